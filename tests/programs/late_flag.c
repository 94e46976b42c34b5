/*
 * A flag set without a lock, seen late: one thread waits 20 ms, sets it
 * and goes on reading the clock; the other reads the clock and waits a
 * millisecond at a time (in poll, which touches no shared state: a sleep
 * would keep its place), noting the first round it saw the flag. The
 * recorded order places the store between the watcher's rounds;
 * catch-up replay with a window wider than the whole run
 * (`--catch-up-window`) lets the watcher's rounds, which touch nothing
 * the setter touches, all go first.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <poll.h>

#include "common.h"

#define ROUNDS 60

static atomic_int flag;

static void *setter(void *arg)
{
    (void)arg;
    poll(NULL, 0, 20);
    atomic_store(&flag, 1);
    /* Busy with calls of its own (no shared state) to the end. */
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        poll(NULL, 0, 1);
    }
    return NULL;
}

int main(void)
{
    pthread_t t;
    CHECK(pthread_create(&t, NULL, setter, NULL) == 0, "pthread_create");
    int first = -1;
    for (int i = 0; i < ROUNDS; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if (first < 0 && atomic_load(&flag))
            first = i;
        poll(NULL, 0, 1);
    }
    CHECK(pthread_join(t, NULL) == 0, "pthread_join");
    printf("saw the flag first in round %d\n", first);
    return 0;
}
