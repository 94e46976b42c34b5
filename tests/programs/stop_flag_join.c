/* The stop flag as most C programs write one: workers print a line and
 * sleep a millisecond until an atomic flag is set; main sleeps, sets the
 * flag and joins them. How many lines each worker prints depends on
 * where main's store fell among the workers' wake-ups: a store between
 * two syscalls that rrc cannot see, placed by the join that follows it. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"

#define WORKERS 3

static atomic_int stop;

static void *worker(void *arg)
{
    long id = (long)arg;
    int ticks = 0;
    while (!atomic_load(&stop)) {
        printf("worker %ld tick %d\n", id, ticks++);
        usleep(1000);
    }
    printf("worker %ld stopped after %d ticks\n", id, ticks);
    return NULL;
}

int main(void)
{
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    usleep(15000);
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    puts("all stopped");
    return 0;
}
