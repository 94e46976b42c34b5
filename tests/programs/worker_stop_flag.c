/*
 * A stop flag that the workers themselves take the signal for: nobody
 * blocks SIGALRM, so the kernel hands it to whichever thread it finds,
 * often a worker just back from one of its many trapped calls (times()).
 * Each worker counts its turns until it sees the flag; how many turns it
 * makes depends on where the handler's write fell among the workers'
 * events, which replay must keep. Four rounds per run.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/times.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define WORKERS 3

static volatile sig_atomic_t stop;

static void on_alarm(int sig)
{
    (void)sig;
    stop = 1;
}

static void *worker(void *arg)
{
    (void)arg;
    long turns = 0;
    while (!stop) {
        struct tms t;
        times(&t);
        if (++turns % 16 == 0) {
            struct timespec pause = {0, 50000};
            nanosleep(&pause, NULL);
        }
    }
    return (void *)turns;
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
    for (int round = 0; round < 4; round++) {
        stop = 0;
        pthread_t t[WORKERS];
        for (long i = 0; i < WORKERS; i++)
            PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
        struct itimerval it = {{0, 0}, {0, 4000}};
        CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
        long total = 0;
        for (int i = 0; i < WORKERS; i++) {
            void *r;
            PCHECK(pthread_join(t[i], &r));
            printf("round %d worker %d turns %ld\n", round, i, (long)r);
            total += (long)r;
        }
        printf("round %d total %ld\n", round, total);
    }
    return 0;
}
