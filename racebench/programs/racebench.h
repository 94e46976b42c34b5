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
 * Descriptors are all created by the main thread before threads start:
 * descriptor numbers handed out to racing threads would depend on timing.
 */
#ifndef RACEBENCH_H
#define RACEBENCH_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
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

static inline void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    PCHECK(pthread_create(t, NULL, fn, arg));
}

static inline void join_thread(pthread_t t)
{
    PCHECK(pthread_join(t, NULL));
}

/*
 * Rounds. The main thread and the racing threads meet at a start barrier
 * and an end barrier in every round. Between rounds the main thread does
 * "housekeeping": several short sleeps, so it is the last to reach the
 * start barrier and releases the racing threads together. Each racing
 * thread reads the clock right after the start barrier and times its
 * steps from that reading.
 *
 * (Why the housekeeping matters for replay: rrc holds each replayed
 * syscall return until the recorded interval since the thread's previous
 * return has passed, per thread. A thread that waited at the barrier gets
 * its clock read back no sooner than its own schedule says and no sooner
 * than the barrier opens; the main thread, with more held syscalls per
 * round, runs the latest schedule, so the barrier lines both racing
 * threads up on it at the start of every round.)
 */
struct rounds {
    pthread_barrier_t start;
    pthread_barrier_t end;
    int count;
};

static inline void rounds_init(struct rounds *r, int racing_threads, int count)
{
    PCHECK(pthread_barrier_init(&r->start, NULL, (unsigned)racing_threads + 1));
    PCHECK(pthread_barrier_init(&r->end, NULL, (unsigned)racing_threads + 1));
    r->count = count;
}

static inline void barrier_wait(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD) {
        fprintf(stderr, "pthread_barrier_wait failed: %s\n", strerror(rc));
        exit(99);
    }
}

/* Racing thread: waits for the round to start; returns the round's start
 * time as this thread sees it. */
static inline int64_t round_begin(struct rounds *r)
{
    barrier_wait(&r->start);
    return now_ns();
}

static inline void round_end(struct rounds *r)
{
    barrier_wait(&r->end);
}

/* Main thread: housekeeping, then opens the round. */
static inline void round_open(struct rounds *r)
{
    for (int i = 0; i < 8; i++)
        sleep_us(250);
    barrier_wait(&r->start);
}

/* Main thread: waits until every racing thread has finished the round. */
static inline void round_close(struct rounds *r)
{
    barrier_wait(&r->end);
}

#endif
