/*
 * Helpers shared by the racebench programs.
 *
 * Every program runs a number of race rounds. In each round the main
 * thread starts fresh threads, which reach their racy accesses after
 * syscall-separated delays (sleeps, pipe and file I/O, clock reads), so
 * natively the race nearly always resolves the same way. At the end the
 * main thread prints one line per round beginning with "race ", naming
 * which way the race went; racebench compares those lines between runs.
 * Other lines ("info ...") may hold values that differ from run to run.
 *
 * The side that acts first natively gets there through a few syscalls
 * (~0.6 ms of sleep plus I/O); the side that acts later waits with one
 * long sleep (12-25 ms). The wide gap keeps the outcome stable natively,
 * and through recording and replay, even on a busy machine where a thread
 * can wait milliseconds for a CPU at each of its syscalls. When replayed sleeps return at once,
 * the late side, having fewer syscalls to get through, tends to get there
 * first or inside the early side's window.
 *
 * Descriptors are all created by the main thread before threads start:
 * descriptor numbers handed out to racing threads would depend on timing.
 */
#ifndef RACEBENCH_H
#define RACEBENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Exit with a message when a call that must work fails. */
#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            perror(what);                                                   \
            exit(99);                                                       \
        }                                                                   \
    } while (0)

/* pthread functions return an error number instead of setting errno. */
#define PCHECK(call)                                                        \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != 0) {                                                     \
            fprintf(stderr, "%s failed: %s\n", #call, strerror(rc_));       \
            exit(99);                                                       \
        }                                                                   \
    } while (0)

/* Keeps the compiler from caching or reordering shared accesses across it
 * (no CPU fence: the races are plain accesses on purpose). */
#define COMPILER_BARRIER() __asm__ __volatile__("" ::: "memory")

static inline int64_t now_ns(void)
{
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0, "clock_gettime");
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* One relative sleep: a single nanosleep syscall. */
static inline void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0)
        CHECK(errno == EINTR, "nanosleep");
}

/* Sleeps until an absolute CLOCK_MONOTONIC time: one clock_nanosleep. */
static inline void sleep_until_ns(int64_t deadline)
{
    struct timespec ts = {deadline / 1000000000LL, deadline % 1000000000LL};
    int rc;
    while ((rc = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL)) == EINTR)
        ;
    CHECK(rc == 0, "clock_nanosleep");
}

/* A small request/response over a pipe the calling thread owns: one write
 * and one read, as a server would talk to a helper. */
static inline void pipe_roundtrip(const int fds[2], const char *msg)
{
    char buf[64];
    size_t len = strlen(msg);
    if (len > sizeof buf)
        len = sizeof buf;
    CHECK(write(fds[1], msg, len) == (ssize_t)len, "write pipe");
    CHECK(read(fds[0], buf, sizeof buf) == (ssize_t)len, "read pipe");
}

static inline void make_pipe(int fds[2])
{
    CHECK(pipe(fds) == 0, "pipe");
}

/*
 * The server's log: a pipe the threads write lines to and the main thread
 * drains after every round. Every racing thread logs what it observed
 * before it exits, so a replay that resolves a race differently shows up
 * at once as a log write with other contents (or another syscall).
 */
static int log_pipe[2];

static inline void log_open(void)
{
    make_pipe(log_pipe);
}

__attribute__((format(printf, 1, 2))) static inline void log_line(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (len < 0)
        len = 0;
    if ((size_t)len >= sizeof line)
        len = sizeof line - 1;
    CHECK(write(log_pipe[1], line, (size_t)len) == len, "write log");
}

/* Main thread, after a round: reads what the round logged. */
static inline void log_drain(void)
{
    char buf[4096];
    CHECK(read(log_pipe[0], buf, sizeof buf) > 0, "read log");
}

static inline void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    PCHECK(pthread_create(t, NULL, fn, arg));
}

static inline void join_thread(pthread_t t)
{
    PCHECK(pthread_join(t, NULL));
}

/*
 * Rounds. In every round the main thread reads the clock (the round's base
 * time), starts fresh threads and joins them. The threads time their steps
 * as absolute deadlines from the base time, so natively a thread that
 * starts late (a busy CPU) still takes its steps on schedule.
 *
 * Fresh threads per round also suit replay: rrc paces each thread by the
 * intervals between its own syscall returns, anchored at the thread's
 * start, so a thread delayed in one round carries no lag into the next
 * (long-lived threads meeting at a barrier would carry it: a thread's
 * first return after the barrier is due relative to its return before).
 */
static int64_t round_base_ns;
static int round_no;

/* Scales every step's offset from the round's base time, in percent (the
 * driver's --time-scale): 10 makes each race's gap ten times narrower. */
#ifndef RACEBENCH_TIME_SCALE_PERCENT
#define RACEBENCH_TIME_SCALE_PERCENT 100
#endif

/* Sleeps until `us` microseconds (times the scale) after the round's base
 * time. */
static inline void sleep_until_round_us(long us)
{
    int64_t scaled_ns = (int64_t)us * 10 * RACEBENCH_TIME_SCALE_PERCENT;
    sleep_until_ns(round_base_ns + scaled_ns);
}

/* Runs one round: `count` threads, started in order, then joined. */
static inline void run_round(int round, void *(*const workers[])(void *), int count)
{
    pthread_t threads[8];
    if (count > 8)
        count = 8;
    round_no = round;
    round_base_ns = now_ns();
    for (int i = 0; i < count; i++)
        start_thread(&threads[i], workers[i], NULL);
    for (int i = 0; i < count; i++)
        join_thread(threads[i]);
}

/* Between rounds: a little idle time, as a server between requests. */
static inline void idle_between_rounds(void)
{
    sleep_us(300);
    sleep_us(300);
}

#endif
