/* Threads take turns through an atomic counter, spinning with
 * sched_yield until it is theirs, and print whether they had to wait for
 * each turn: how often a thread finds its turn not yet come depends on
 * where the others' increments (which rrc cannot see) fell among its
 * looks. Each yield has a place in the event order, so the looks do too. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>

#include "common.h"

#define THREADS 3
#define ROUNDS 30

static atomic_int turn;

static void *taker(void *arg)
{
    long id = (long)arg;
    for (int round = 0; round < ROUNDS; round++) {
        int waited = 0;
        while (atomic_load(&turn) % THREADS != id) {
            sched_yield();
            waited = 1;
        }
        printf("thread %ld round %d %s\n", id, round, waited ? "waited" : "found its turn");
        atomic_fetch_add(&turn, 1);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, taker, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    puts("all rounds taken");
    return 0;
}
