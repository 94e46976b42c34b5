/*
 * Twelve threads allocate at once, so malloc makes more arenas than its
 * first eight and sizes its arena limit from the processor count, in
 * whichever thread needs the ninth: glibc reads the count lazily, behind
 * a flag it sets without a lock. The threads print what they summed.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common.h"

#define THREADS 12
#define BLOCKS 200

static pthread_barrier_t start;

static void *worker(void *arg)
{
    long id = (long)arg;
    void *blocks[BLOCKS];
    pthread_barrier_wait(&start);
    long sum = 0;
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(64 + i);
        CHECK(blocks[i] != NULL, "malloc");
        sum += i * id;
    }
    for (int i = 0; i < BLOCKS; i++)
        free(blocks[i]);
    return (void *)sum;
}

int main(void)
{
    pthread_t t[THREADS];
    CHECK(pthread_barrier_init(&start, NULL, THREADS) == 0, "barrier");
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    long total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0, "pthread_join");
        total += (long)r;
    }
    printf("total %ld\n", total);
    return 0;
}
