/*
 * The classic stop flag: three workers loop until a SIGALRM handler sets
 * a volatile flag, taking a mutex and sleeping briefly on every turn; the
 * main thread waits in sigsuspend (rounds 0-1) or straight in
 * pthread_join, asleep in a futex (rounds 2-3). How many turns each worker
 * makes depends on where the handler's write fell among the workers'
 * events: replay must put it at the same place.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define WORKERS 3

static volatile sig_atomic_t stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long turns_locked[WORKERS];

static void on_alarm(int sig)
{
    (void)sig;
    stop = 1;
}

static void *worker(void *arg)
{
    long id = (long)arg;
    long turns = 0;
    while (!stop) {
        PCHECK(pthread_mutex_lock(&mu));
        turns_locked[id]++;
        PCHECK(pthread_mutex_unlock(&mu));
        struct timespec pause = {0, 200000 + id * 100000};
        nanosleep(&pause, NULL);
        turns++;
    }
    return (void *)turns;
}

int main(void)
{
    struct sigaction sa = {0};
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
    for (int round = 0; round < 4; round++) {
        stop = 0;
        /* Only the main thread takes SIGALRM: workers block it. */
        sigset_t alrm, old, none;
        sigemptyset(&alrm);
        sigaddset(&alrm, SIGALRM);
        PCHECK(pthread_sigmask(SIG_BLOCK, &alrm, &old));
        pthread_t t[WORKERS];
        for (long i = 0; i < WORKERS; i++)
            PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
        struct itimerval it = {{0, 0}, {0, 15000}};
        CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0, "setitimer");
        if (round < 2) {
            sigemptyset(&none);
            while (!stop)
                sigsuspend(&none);
        }
        PCHECK(pthread_sigmask(SIG_SETMASK, &old, NULL));
        long total = 0;
        for (int i = 0; i < WORKERS; i++) {
            void *r;
            PCHECK(pthread_join(t[i], &r));
            printf("round %d worker %d turns %ld locked %ld\n", round, i, (long)r,
                   turns_locked[i]);
            total += (long)r;
            turns_locked[i] = 0;
        }
        printf("round %d total %ld\n", round, total);
    }
    return 0;
}
