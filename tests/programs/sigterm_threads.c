/*
 * Three worker threads read the clock, sleep briefly and bump a shared
 * counter under a mutex, forever; the main thread sleeps in a loop. No
 * handler is installed, so the SIGTERM that stops the program ends the
 * whole process wherever each thread is: replay must end it after the
 * same events, not earlier and not later.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counter;

static void *worker(void *arg)
{
    (void)arg;
    struct timespec pause = {0, 200000};
    for (;;) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        nanosleep(&pause, NULL);
        pthread_mutex_lock(&lock);
        counter += (unsigned long)now.tv_nsec & 7;
        pthread_mutex_unlock(&lock);
    }
    return NULL;
}

int main(void)
{
    pthread_t threads[3];
    for (int i = 0; i < 3; i++)
        PCHECK(pthread_create(&threads[i], NULL, worker, NULL));
    printf("sigterm_threads: ready\n");
    fflush(stdout);
    for (;;) {
        struct timespec pause = {0, 50000000};
        nanosleep(&pause, NULL);
    }
}
