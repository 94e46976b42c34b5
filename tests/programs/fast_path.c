/*
 * The corners of the fast path (calls the shim makes untrapped and logs
 * in-process), one mode per argument. Each prints what a replay must
 * reproduce; time and the interleaving make native runs differ.
 *
 *   signals   a thread blocked in a buffered read and in epoll_wait gets
 *             signals with and without SA_RESTART
 *   timer     an interval timer against a thread that makes only
 *             buffered calls (clock reads): where each tick lands
 *   overflow  more buffered calls than a thread's buffer holds, and a
 *             send larger than it
 *   fds       dup2 over a descriptor buffered calls use
 *   fork      fork and vfork while other threads sit in buffered reads
 *   kill      SIGKILL while a thread is blocked in a buffered read
 *   early     a clock read from a constructor (before the shim may be
 *             ready) and a thread whose first call is buffered
 *   idle      300 buffered writes, then a buffered read that waits until
 *             the program is killed: the trace must show the writes
 *             while the program still waits (it never stops for rrc)
 *   interleave  three threads whose buffered clock reads and writes
 *             interleave with each other's locks: which thread logs
 *             when differs between runs
 *   cancel    pthread_cancel of a thread blocked in a buffered read (a
 *             cancellation point), whose cleanup handler prints
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static long early_ns;

__attribute__((constructor)) static void early_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    early_ns = ts.tv_nsec;
}

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static volatile sig_atomic_t handled;
static void on_signal(int sig) { (void)sig; handled++; }

static void handle(int sig, int flags)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = flags;
    CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

/* ------------------------------------------------------------ signals */

static int sig_pipe[2];
static int sig_ep;

static void *blocked_reader(void *arg)
{
    (void)arg;
    char buf[32];
    /* SIGUSR1 (SA_RESTART): the read goes on and gets the data. */
    ssize_t n = read(sig_pipe[0], buf, sizeof buf);
    printf("read after a restarting signal: %zd handled %d\n", n, (int)handled);
    /* SIGUSR2 (no SA_RESTART): the read fails with EINTR. */
    n = read(sig_pipe[0], buf, sizeof buf);
    printf("read after an interrupting signal: %zd errno %s handled %d\n", n,
           n < 0 && errno == EINTR ? "EINTR" : "other", (int)handled);
    /* epoll_wait: EINTR whatever the flags. */
    struct epoll_event ev;
    int r = epoll_wait(sig_ep, &ev, 1, -1);
    printf("epoll_wait after a signal: %d errno %s handled %d\n", r,
           r < 0 && errno == EINTR ? "EINTR" : "other", (int)handled);
    r = epoll_wait(sig_ep, &ev, 1, -1);
    printf("epoll_wait then: %d\n", r);
    return NULL;
}

static int mode_signals(void)
{
    handle(SIGUSR1, SA_RESTART);
    handle(SIGUSR2, 0);
    CHECK(pipe(sig_pipe) == 0, "pipe");
    sig_ep = epoll_create1(0);
    CHECK(sig_ep >= 0, "epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
    CHECK(epoll_ctl(sig_ep, EPOLL_CTL_ADD, sig_pipe[0], &ev) == 0, "epoll_ctl");
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, blocked_reader, NULL));
    usleep(30000);
    pthread_kill(t, SIGUSR1);
    usleep(30000);
    CHECK(write(sig_pipe[1], "first", 5) == 5, "write");
    usleep(30000);
    pthread_kill(t, SIGUSR2);
    usleep(30000);
    pthread_kill(t, SIGUSR1);
    usleep(30000);
    CHECK(write(sig_pipe[1], "second", 6) == 6, "write");
    PCHECK(pthread_join(t, NULL));
    printf("signals handled %d at %ld\n", (int)handled, now_us() % 1000);
    return 0;
}

/* -------------------------------------------------------------- timer */

static int mode_timer(void)
{
    handle(SIGALRM, SA_RESTART);
    struct itimerval it = {{0, 2000}, {0, 2000}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
    long calls = 0, marks[5];
    int seen = 0;
    while (seen < 5) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        calls++;
        if (handled > seen)
            marks[seen++] = calls;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    for (int i = 0; i < 5; i++)
        printf("tick %d seen after %ld clock reads\n", i + 1, marks[i]);
    return 0;
}

/* ----------------------------------------------------------- overflow */

static int mode_overflow(void)
{
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0, "open /dev/null");
    char line[64];
    long sum = 0;
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(line, sizeof line, "line %d at %ld\n", i, now_us());
        sum += write(null, line, (size_t)n);
    }
    printf("wrote %ld bytes in small writes\n", sum);
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    int big = 1 << 20;
    CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big) == 0, "SO_SNDBUF");
    size_t len = 300 << 10;
    char *buf = malloc(len);
    CHECK(buf != NULL, "malloc");
    size_t salt = (size_t)now_us() % 3;
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)(i * 7 + salt);
    ssize_t sent = 0;
    while ((size_t)sent < len) {
        ssize_t n = send(sv[0], buf + sent, len - (size_t)sent, 0);
        CHECK(n > 0, "send");
        sent += n;
        char *back = malloc((size_t)n);
        ssize_t got = 0;
        while (got < n) {
            ssize_t r = recv(sv[1], back + got, (size_t)(n - got), 0);
            CHECK(r > 0, "recv");
            got += r;
        }
        free(back);
    }
    printf("sent %zd bytes, hash %016llx\n", sent, (unsigned long long)fnv1a(buf, len));
    return 0;
}

/* ---------------------------------------------------------------- fds */

static int mode_fds(void)
{
    int a[2], b[2];
    CHECK(pipe(a) == 0 && pipe(b) == 0, "pipe");
    char msg[32];
    int n = snprintf(msg, sizeof msg, "at %ld\n", now_us() % 100000);
    CHECK(write(a[1], msg, (size_t)n) == n, "write a");
    CHECK(dup2(b[1], a[1]) == a[1], "dup2");
    CHECK(write(a[1], msg, (size_t)n) == n, "write through the new a[1]");
    char got[64] = {0};
    CHECK(read(b[0], got, sizeof got - 1) == n, "read b");
    char first[64] = {0};
    CHECK(read(a[0], first, sizeof first - 1) == n, "read a");
    printf("pipe a got %s", first);
    printf("pipe b got %s", got);
    return 0;
}

/* --------------------------------------------------------------- fork */

static int fork_pipe[2];

static void *waiting_reader(void *arg)
{
    char c;
    ssize_t n = read(fork_pipe[0], &c, 1);
    printf("reader %ld woke with %zd byte(s) at %ld\n", (long)arg, n, now_us() % 10);
    return NULL;
}

static int mode_fork(void)
{
    CHECK(pipe(fork_pipe) == 0, "pipe");
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        PCHECK(pthread_create(&t[i], NULL, waiting_reader, (void *)i));
    usleep(20000);
    fflush(stdout);
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "child at %ld\n", now_us() % 1000);
        _exit(write(1, msg, (size_t)n) == n ? 3 : 4);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    pid_t v = vfork();
    if (v == 0) {
        execl("/bin/true", "true", (char *)NULL);
        _exit(127);
    }
    CHECK(v > 0 && waitpid(v, &status, 0) == v, "vfork");
    printf("children done, the vfork child exited %d\n", WEXITSTATUS(status));
    CHECK(write(fork_pipe[1], "xy", 2) == 2, "write");
    for (int i = 0; i < 2; i++)
        PCHECK(pthread_join(t[i], NULL));
    return 0;
}

/* --------------------------------------------------------------- kill */

static void *reader_forever(void *arg)
{
    (void)arg;
    char c;
    read(fork_pipe[0], &c, 1);
    return NULL;
}

static int mode_kill(void)
{
    CHECK(pipe(fork_pipe) == 0, "pipe");
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, reader_forever, NULL));
    printf("about to die at %ld\n", now_us() % 1000);
    fflush(stdout);
    usleep(20000);
    raise(SIGKILL);
    return 1;
}

/* -------------------------------------------------------------- early */

static void *clock_first(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    printf("a thread's first call read %ld\n", ts.tv_nsec % 1000);
    return NULL;
}

static int mode_early(void)
{
    printf("constructor read %ld\n", early_ns % 1000);
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, clock_first, NULL));
    PCHECK(pthread_join(t, NULL));
    return 0;
}

/* --------------------------------------------------------------- idle */

static int mode_idle(void)
{
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0, "open /dev/null");
    CHECK(pipe(fork_pipe) == 0, "pipe");
    /* Nothing but buffered calls from here on. */
    for (int i = 0; i < 300; i++)
        CHECK(write(null, "x", 1) == 1, "write");
    char c;
    read(fork_pipe[0], &c, 1);
    return 0;
}

/* --------------------------------------------------------- interleave */

#define ROUNDS 300
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_of[3 * ROUNDS], logged;
static long tally;

static void *interleaver(void *arg)
{
    long id = (long)arg;
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0, "open /dev/null");
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        CHECK(write(null, &ts, sizeof ts) == sizeof ts, "write");
        pthread_mutex_lock(&log_lock);
        log_of[logged++] = (int)id;
        tally += ts.tv_nsec % 7;
        pthread_mutex_unlock(&log_lock);
    }
    close(null);
    return NULL;
}

static int mode_interleave(void)
{
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        PCHECK(pthread_create(&t[i], NULL, interleaver, (void *)i));
    for (int i = 0; i < 3; i++)
        PCHECK(pthread_join(t[i], NULL));
    printf("logged %d, order %016llx, tally %ld\n", logged,
           (unsigned long long)fnv1a(log_of, sizeof log_of), tally);
    return 0;
}

/* ------------------------------------------------------------- cancel */

static int cancel_pipe[2];
static volatile long cancel_reads;

static void said_goodbye(void *arg)
{
    (void)arg;
    printf("cleanup after %ld reads\n", cancel_reads);
}

static void *cancelled_reader(void *arg)
{
    pthread_cleanup_push(said_goodbye, arg);
    for (;;) {
        char c;
        ssize_t n = read(cancel_pipe[0], &c, 1);
        cancel_reads++;
        printf("read %zd byte\n", n);
    }
    pthread_cleanup_pop(0);
    return NULL;
}

static int mode_cancel(void)
{
    CHECK(pipe(cancel_pipe) == 0, "pipe");
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, cancelled_reader, NULL));
    CHECK(write(cancel_pipe[1], "x", 1) == 1, "write");
    /* Long enough for the reader to block again, in read. */
    usleep(20000);
    PCHECK(pthread_cancel(t));
    void *result;
    PCHECK(pthread_join(t, &result));
    printf("cancelled: %s\n", result == PTHREAD_CANCELED ? "yes" : "no");
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "signals"))
        return mode_signals();
    if (!strcmp(mode, "timer"))
        return mode_timer();
    if (!strcmp(mode, "overflow"))
        return mode_overflow();
    if (!strcmp(mode, "fds"))
        return mode_fds();
    if (!strcmp(mode, "fork"))
        return mode_fork();
    if (!strcmp(mode, "kill"))
        return mode_kill();
    if (!strcmp(mode, "early"))
        return mode_early();
    if (!strcmp(mode, "idle"))
        return mode_idle();
    if (!strcmp(mode, "interleave"))
        return mode_interleave();
    if (!strcmp(mode, "cancel"))
        return mode_cancel();
    fprintf(stderr, "usage: fast_path signals|timer|overflow|fds|fork|kill|early|idle|interleave|cancel\n");
    return 2;
}
