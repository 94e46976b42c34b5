/*
 * An interval timer and a signal handler: setitimer(ITIMER_REAL) fires
 * SIGALRM every 2.5 ms; an SA_RESTART handler counts the ticks. The main
 * loop alternates nanosleep and pure computation and prints, at each
 * iteration, the tick count it observed: which iteration sees which tick
 * depends on timing, so native runs differ and replay must re-deliver
 * every SIGALRM at its recorded point.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define ITERATIONS 40

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

/* Sleeps the whole of `ns`, resuming after each interruption. */
static int sleep_ns(long ns)
{
    struct timespec req = {0, ns}, rem;
    int interrupted = 0;
    while (nanosleep(&req, &rem) != 0) {
        CHECK(errno == EINTR, "nanosleep");
        interrupted++;
        req = rem;
    }
    return interrupted;
}

/* About a millisecond of arithmetic, no syscalls. */
static uint64_t compute(uint64_t seed)
{
    uint64_t x = seed | 1;
    for (int i = 0; i < 1500000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");

    struct itimerval it = {.it_interval = {0, 2500}, .it_value = {0, 2500}};
    CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");

    uint64_t h = 0;
    int interrupted = 0;
    for (int i = 0; i < ITERATIONS; i++) {
        if (i % 2 == 0)
            interrupted += sleep_ns(1000000 + 250000 * (i % 5));
        else
            h = compute(h + (uint64_t)i);
        printf("iteration %2d: ticks %d\n", i, (int)ticks);
        fflush(stdout);
    }

    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "setitimer off");
    int total = (int)ticks;
    printf("itimer_signal: %d ticks, %d interrupted sleeps, hash %016llx\n", total,
           interrupted, (unsigned long long)h);
    return total > 0 ? 0 : 1;
}
