/* stdio entry points, wrapped so that each call takes its FILE's lock in
 * the order rrc recorded (record) or enforces (replay). glibc takes a
 * FILE's lock inline, inside each function, where no interposition can
 * see it; these wrappers take the same (recursive) lock first, through
 * rrc_stdio_lock, which logs or waits for the acquisition's turn like a
 * mutex's. The real function then re-takes the lock it already holds.
 *
 * In C because most of these are variadic, which stable Rust cannot
 * define. Each wrapper forwards to the next definition (libc's), found
 * with dlsym(RTLD_NEXT) on first use. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/* Not <stdio.h>: it renames scanf and friends to their __isoc99_ forms
 * with asm labels, and both names need a wrapper of their own. */
typedef struct _IO_FILE FILE;
extern FILE *stdin;
extern FILE *stdout;

/* The layout of a stream (part of glibc's ABI) and its list of open
 * streams, for fflush(NULL). */
#include <bits/types/struct_FILE.h>
extern struct _IO_FILE *_IO_list_all;
void _IO_list_lock(void);
void _IO_list_unlock(void);

void rrc_stdio_lock(FILE *fp);
void rrc_stdio_unlock(FILE *fp);
int rrc_stdio_trylock(FILE *fp);
int rrc_stream_list_enter(void);
void rrc_stream_list_leave(void);

/* The next definition of `name`, cached in `slot` (races store the same
 * value). */
#define REAL(slot, name)                                                      \
    (slot ? slot : (slot = (__typeof__(slot))dlsym(RTLD_NEXT, name)))

/* Each wrapper is rrc_c_NAME, hidden: librrc_shim.so exports NAME as a
 * one-jump trampoline (Rust's naked functions, in src/stdio.rs), because
 * a Rust cdylib exports only symbols defined in Rust. */
#define HIDDEN __attribute__((visibility("hidden")))

/* Defines a wrapper with fixed arguments: RET name(PARAMS) locking `fp`
 * around the real call with ARGS. */
#define WRAP(ret, name, fp, params, args)                                     \
    HIDDEN ret rrc_c_##name params                                            \
    {                                                                         \
        static ret(*real) params;                                             \
        if (!REAL(real, #name))                                               \
            return (ret)-1;                                                   \
        FILE *locked = (fp);                                                  \
        if (locked)                                                           \
            rrc_stdio_lock(locked);                                           \
        ret r = real args;                                                    \
        if (locked)                                                           \
            rrc_stdio_unlock(locked);                                         \
        return r;                                                             \
    }

/* Output. */
WRAP(int, vfprintf, fp, (FILE *fp, const char *fmt, va_list ap), (fp, fmt, ap))
WRAP(int, vprintf, stdout, (const char *fmt, va_list ap), (fmt, ap))
WRAP(int, __vfprintf_chk, fp, (FILE *fp, int flag, const char *fmt, va_list ap),
     (fp, flag, fmt, ap))
WRAP(int, __vprintf_chk, stdout, (int flag, const char *fmt, va_list ap), (flag, fmt, ap))
WRAP(int, fputs, fp, (const char *s, FILE *fp), (s, fp))
WRAP(int, puts, stdout, (const char *s), (s))
WRAP(int, fputc, fp, (int c, FILE *fp), (c, fp))
WRAP(int, putc, fp, (int c, FILE *fp), (c, fp))
WRAP(int, _IO_putc, fp, (int c, FILE *fp), (c, fp))
WRAP(int, putchar, stdout, (int c), (c))
WRAP(size_t, fwrite, fp, (const void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp))
/* fflush(NULL) flushes every stream with output pending, each under its
 * own lock (glibc's _IO_flush_all, which takes them inline): done here,
 * stream by stream, so that each of those locks is taken in the recorded
 * order too. Without it, a thread's fflush(NULL) empties stdout's buffer
 * at a point no other thread's printf is ordered against. Walks of the
 * list take their turns as a whole (rrc_stream_list_enter): each holds
 * glibc's list lock while it waits for the streams' turns. */
HIDDEN int rrc_c_fflush(FILE *fp)
{
    static int (*real)(FILE *);
    if (!REAL(real, "fflush"))
        return -1;
    if (fp) {
        rrc_stdio_lock(fp);
        int r = real(fp);
        rrc_stdio_unlock(fp);
        return r;
    }
    int result = 0;
    int walking = rrc_stream_list_enter();
    _IO_list_lock();
    for (struct _IO_FILE *f = _IO_list_all; f; f = f->_chain) {
        rrc_stdio_lock(f);
        /* As _IO_flush_all decides: a byte stream with bytes written
         * but not yet flushed; a wide one is flushed as fflush does.
         * fflush on a stream that is only being read would drop what
         * it read ahead, which fflush(NULL) leaves alone. */
        int pending = f->_mode > 0 || f->_IO_write_ptr > f->_IO_write_base;
        if (pending && real(f) != 0)
            result = -1;
        rrc_stdio_unlock(f);
    }
    _IO_list_unlock();
    if (walking)
        rrc_stream_list_leave();
    return result;
}

/* glibc's flag for a stream opened for reading only (libio.h). */
#define RRC_IO_NO_WRITES 0x0008

/* At exit, after the program's own atexit handlers, glibc flushes every
 * stream with output pending without taking their locks (_IO_cleanup):
 * the bytes other threads had put in a buffer by then go out in the
 * exiting thread's write, at a point no order records. The shim flushes
 * first, from an atexit handler registered before the program's (so it
 * runs after theirs), taking each writable stream's lock at its recorded
 * turn, as fflush(NULL) does, and keeping it. Streams only read, or never
 * used, are left alone: a thread blocked reading one holds its lock, and
 * exit must not wait for it. */
static int written_to(const struct _IO_FILE *f)
{
    /* Not opened for reading only, and used: a stream takes its
     * orientation (_mode) at its first use and keeps it. */
    return !(f->_flags & RRC_IO_NO_WRITES) && f->_mode != 0;
}

HIDDEN void rrc_c_flush_at_exit(void)
{
    static int (*real)(FILE *);
    if (!REAL(real, "fflush"))
        return;
    /* A program that never wrote through stdio has nothing to order. */
    int any = 0;
    _IO_list_lock();
    for (struct _IO_FILE *f = _IO_list_all; f && !any; f = f->_chain)
        any = written_to(f);
    _IO_list_unlock();
    if (!any)
        return;
    int walking = rrc_stream_list_enter();
    _IO_list_lock();
    for (struct _IO_FILE *f = _IO_list_all; f; f = f->_chain) {
        if (!written_to(f))
            continue;
        /* Kept until the process ends: a thread that prints from here on
         * waits, as it waits in replay past its recorded end, instead of
         * filling a buffer that glibc's unlocked flush would then write
         * from this thread too. (glibc takes these locks again at exit
         * only with trylock, which the owner passes.) */
        rrc_stdio_lock(f);
        if (f->_mode > 0 || f->_IO_write_ptr > f->_IO_write_base)
            real(f);
    }
    _IO_list_unlock();
    if (walking)
        rrc_stream_list_leave();
}

/* Input. */
WRAP(char *, fgets, fp, (char *s, int n, FILE *fp), (s, n, fp))
WRAP(char *, __fgets_chk, fp, (char *s, size_t size, int n, FILE *fp), (s, size, n, fp))
WRAP(int, fgetc, fp, (FILE *fp), (fp))
WRAP(int, getc, fp, (FILE *fp), (fp))
WRAP(int, _IO_getc, fp, (FILE *fp), (fp))
WRAP(int, getchar, stdin, (void), ())
WRAP(int, ungetc, fp, (int c, FILE *fp), (c, fp))
WRAP(size_t, fread, fp, (void *p, size_t size, size_t n, FILE *fp), (p, size, n, fp))
WRAP(size_t, __fread_chk, fp, (void *p, size_t len, size_t size, size_t n, FILE *fp),
     (p, len, size, n, fp))
WRAP(ssize_t, getline, fp, (char **line, size_t *n, FILE *fp), (line, n, fp))
WRAP(ssize_t, getdelim, fp, (char **line, size_t *n, int delim, FILE *fp),
     (line, n, delim, fp))
WRAP(ssize_t, __getdelim, fp, (char **line, size_t *n, int delim, FILE *fp),
     (line, n, delim, fp))
WRAP(int, vfscanf, fp, (FILE *fp, const char *fmt, va_list ap), (fp, fmt, ap))
WRAP(int, __isoc99_vfscanf, fp, (FILE *fp, const char *fmt, va_list ap), (fp, fmt, ap))
WRAP(int, vscanf, stdin, (const char *fmt, va_list ap), (fmt, ap))
WRAP(int, __isoc99_vscanf, stdin, (const char *fmt, va_list ap), (fmt, ap))

/* The variadic forms take the lock once, here, and call libc's va_list
 * form directly (not the wrapper above). */
typedef int (*vfprintf_fn)(FILE *, const char *, va_list);
typedef int (*vfprintf_chk_fn)(FILE *, int, const char *, va_list);

#define LOCKED_VA(fp, call)                                                   \
    do {                                                                      \
        va_list ap;                                                           \
        va_start(ap, fmt);                                                    \
        rrc_stdio_lock(fp);                                                   \
        r = call;                                                             \
        rrc_stdio_unlock(fp);                                                 \
        va_end(ap);                                                           \
    } while (0)

static vfprintf_fn real_vfprintf(void)
{
    static vfprintf_fn real;
    return REAL(real, "vfprintf");
}

static vfprintf_chk_fn real_vfprintf_chk(void)
{
    static vfprintf_chk_fn real;
    return REAL(real, "__vfprintf_chk");
}

static vfprintf_fn real_vfscanf(void)
{
    static vfprintf_fn real;
    return REAL(real, "vfscanf");
}

static vfprintf_fn real_isoc99_vfscanf(void)
{
    static vfprintf_fn real;
    return REAL(real, "__isoc99_vfscanf");
}

HIDDEN int rrc_c_printf(const char *fmt, ...)
{
    vfprintf_fn f = real_vfprintf();
    int r = -1;
    if (f)
        LOCKED_VA(stdout, f(stdout, fmt, ap));
    return r;
}

HIDDEN int rrc_c_fprintf(FILE *fp, const char *fmt, ...)
{
    vfprintf_fn f = real_vfprintf();
    int r = -1;
    if (f)
        LOCKED_VA(fp, f(fp, fmt, ap));
    return r;
}

HIDDEN int rrc_c___printf_chk(int flag, const char *fmt, ...)
{
    vfprintf_chk_fn f = real_vfprintf_chk();
    int r = -1;
    if (f)
        LOCKED_VA(stdout, f(stdout, flag, fmt, ap));
    return r;
}

HIDDEN int rrc_c___fprintf_chk(FILE *fp, int flag, const char *fmt, ...)
{
    vfprintf_chk_fn f = real_vfprintf_chk();
    int r = -1;
    if (f)
        LOCKED_VA(fp, f(fp, flag, fmt, ap));
    return r;
}

HIDDEN int rrc_c_scanf(const char *fmt, ...)
{
    vfprintf_fn f = real_vfscanf();
    int r = -1;
    if (f)
        LOCKED_VA(stdin, f(stdin, fmt, ap));
    return r;
}

HIDDEN int rrc_c_fscanf(FILE *fp, const char *fmt, ...)
{
    vfprintf_fn f = real_vfscanf();
    int r = -1;
    if (f)
        LOCKED_VA(fp, f(fp, fmt, ap));
    return r;
}

HIDDEN int rrc_c___isoc99_scanf(const char *fmt, ...)
{
    vfprintf_fn f = real_isoc99_vfscanf();
    int r = -1;
    if (f)
        LOCKED_VA(stdin, f(stdin, fmt, ap));
    return r;
}

HIDDEN int rrc_c___isoc99_fscanf(FILE *fp, const char *fmt, ...)
{
    vfprintf_fn f = real_isoc99_vfscanf();
    int r = -1;
    if (f)
        LOCKED_VA(fp, f(fp, fmt, ap));
    return r;
}

/* The program's own locking of a FILE. */
HIDDEN void rrc_c_flockfile(FILE *fp)
{
    rrc_stdio_lock(fp);
}

HIDDEN void rrc_c_funlockfile(FILE *fp)
{
    rrc_stdio_unlock(fp);
}

HIDDEN int rrc_c_ftrylockfile(FILE *fp)
{
    return rrc_stdio_trylock(fp);
}

/* libc's syscall(): Rust's std (and hand-written locks) make their futex
 * calls through it. Futex waits and wakes go to rrc_futex, which puts
 * them in the event order; every other call goes straight to libc. */
long rrc_futex(long uaddr, long op, long val, long timeout, long uaddr2, long val3);

HIDDEN long rrc_c_syscall(long nr, ...)
{
    static long (*real)(long, ...);
    long a[6];
    va_list ap;
    va_start(ap, nr);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (nr == 202 /* SYS_futex on x86-64 */)
        return rrc_futex(a[0], a[1], a[2], a[3], a[4], a[5]);
    if (!REAL(real, "syscall"))
        return -1;
    return real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

/* syslog: connects to the log socket on first use and formats the local
 * time (loading the time zone on first use), under glibc's own locks, in
 * whichever thread gets there first. Each call is made whole at its turn
 * of the time-zone state (see libc_lazy.rs). */
int rrc_time_zone_enter(void);
void rrc_time_zone_leave(void);

typedef void (*vsyslog_fn)(int, const char *, va_list);
typedef void (*vsyslog_chk_fn)(int, int, const char *, va_list);

/* Makes `call` whole at the time-zone state's turn. */
#define AT_TIME_ZONE_TURN(call)                                               \
    do {                                                                      \
        int taken = rrc_time_zone_enter();                                    \
        call;                                                                 \
        if (taken)                                                            \
            rrc_time_zone_leave();                                            \
    } while (0)

/* The same for a variadic wrapper, whose arguments go on as `ap`. */
#define AT_TIME_ZONE_TURN_VA(call)                                            \
    do {                                                                      \
        va_list ap;                                                           \
        va_start(ap, fmt);                                                    \
        AT_TIME_ZONE_TURN(call);                                              \
        va_end(ap);                                                           \
    } while (0)

static vsyslog_fn real_vsyslog(void)
{
    static vsyslog_fn real;
    return REAL(real, "vsyslog");
}

static vsyslog_chk_fn real_vsyslog_chk(void)
{
    static vsyslog_chk_fn real;
    return REAL(real, "__vsyslog_chk");
}

HIDDEN void rrc_c_syslog(int pri, const char *fmt, ...)
{
    vsyslog_fn f = real_vsyslog();
    if (f)
        AT_TIME_ZONE_TURN_VA(f(pri, fmt, ap));
}

HIDDEN void rrc_c___syslog_chk(int pri, int flag, const char *fmt, ...)
{
    vsyslog_chk_fn f = real_vsyslog_chk();
    if (f)
        AT_TIME_ZONE_TURN_VA(f(pri, flag, fmt, ap));
}

HIDDEN void rrc_c_vsyslog(int pri, const char *fmt, va_list ap)
{
    vsyslog_fn f = real_vsyslog();
    if (f)
        AT_TIME_ZONE_TURN(f(pri, fmt, ap));
}

HIDDEN void rrc_c___vsyslog_chk(int pri, int flag, const char *fmt, va_list ap)
{
    vsyslog_chk_fn f = real_vsyslog_chk();
    if (f)
        AT_TIME_ZONE_TURN(f(pri, flag, fmt, ap));
}

HIDDEN void rrc_c_openlog(const char *ident, int option, int facility)
{
    static void (*real)(const char *, int, int);
    if (REAL(real, "openlog"))
        AT_TIME_ZONE_TURN(real(ident, option, facility));
}

HIDDEN void rrc_c_closelog(void)
{
    static void (*real)(void);
    if (REAL(real, "closelog"))
        AT_TIME_ZONE_TURN(real());
}
