/* Threads take a lock rrc cannot see: a futex lock whose futex calls are
 * made with the raw syscall instruction (not through libc's syscall(),
 * which the shim orders), or, with "spin", a sched_yield spin lock. What
 * they do while holding it makes replay hold them somewhere:
 *
 *   rank    gettimeofday and a write(2) to fd 1 (event-rank holds; the
 *           output is printed by the replayer in recorded order)
 *   run     pipe and dup (calls replay runs for real at their rank)
 *   fork    fork a child that writes a line (the fork barrier)
 *   signal  the same as rank, under a 1 ms interval timer whose handler
 *           writes to fd 1 (signals and their handlers)
 *   exit    main takes the lock and exits holding it while the workers
 *           still loop (an exit waiting for the other threads)
 *   spin    the same as rank, with a spin lock
 *
 * The lines say which thread and turn, not the shared counter, so that a
 * replay taking the lock in another order can still be faithful and run
 * on to meet every hold. Replay of any of them must end within seconds,
 * faithfully or with a divergence, never stall. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static atomic_int word; /* 0 free, 1 locked, 2 locked with waiters */
static long counter;
static const char *mode = "rank";
static int spin;
static int rounds = 40;
static volatile sig_atomic_t ticks;

static long raw_futex(atomic_int *uaddr, int op, int val)
{
    long ret;
    register long r10 __asm__("r10") = 0;
    register long r8 __asm__("r8") = 0;
    register long r9 __asm__("r9") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "0"((long)SYS_futex), "D"(uaddr), "S"((long)op), "d"((long)val),
                       "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static void lock(void)
{
    int c = 0;
    if (spin) {
        while (!atomic_compare_exchange_weak(&word, &c, 1)) {
            c = 0;
            sched_yield();
        }
        return;
    }
    if (atomic_compare_exchange_strong(&word, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(&word, 2);
    while (c != 0) {
        raw_futex(&word, FUTEX_WAIT_PRIVATE, 2);
        c = atomic_exchange(&word, 2);
    }
}

static void unlock(void)
{
    if (spin) {
        atomic_store(&word, 0);
        return;
    }
    if (atomic_fetch_sub(&word, 1) != 1) {
        atomic_store(&word, 0);
        raw_futex(&word, FUTEX_WAKE_PRIVATE, 1);
    }
}

static void say(const char *fmt, long a, long b, long c)
{
    char line[96];
    int n = snprintf(line, sizeof line, fmt, a, b, c);
    CHECK(write(1, line, (size_t)n) == n, "write");
}

static void inside(long id, int i)
{
    long mine = ++counter;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (!strcmp(mode, "run")) {
        int fds[2];
        CHECK(pipe(fds) == 0, "pipe");
        int d = dup(fds[1]);
        CHECK(d >= 0, "dup");
        close(d);
        close(fds[0]);
        close(fds[1]);
    } else if (!strcmp(mode, "fork")) {
        pid_t child = fork();
        CHECK(child >= 0, "fork");
        if (child == 0) {
            say("child of worker %ld turn %ld (%ld)\n", id, i, mine > 0);
            _exit(0);
        }
        CHECK(waitpid(child, NULL, 0) == child, "waitpid");
    }
    say("worker %ld turn %ld (%ld)\n", id, i, mine > 0);
}

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; !strcmp(mode, "exit") || i < rounds; i++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        if (!strcmp(mode, "exit"))
            usleep(1000);
        lock();
        inside(id, i);
        unlock();
    }
    return NULL;
}

static void on_tick(int sig)
{
    (void)sig;
    ticks++;
    static const char msg[] = "tick\n";
    CHECK(write(1, msg, sizeof msg - 1) == (ssize_t)(sizeof msg - 1), "write");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        mode = argv[1];
    spin = !strcmp(mode, "spin");
    if (!strcmp(mode, "fork"))
        rounds = 10;
    if (!strcmp(mode, "signal")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_tick;
        sa.sa_flags = SA_RESTART;
        CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
        struct itimerval it = {{0, 1000}, {0, 1000}};
        CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
    }
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    if (!strcmp(mode, "exit")) {
        usleep(20000);
        lock();
        printf("unseen_lock: exit holding the lock\n");
        exit(0);
    }
    for (int i = 0; i < 4; i++)
        PCHECK(pthread_join(t[i], NULL));
    if (!strcmp(mode, "signal")) {
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
    }
    printf("unseen_lock %s: counter %ld\n", mode, counter);
    return 0;
}
