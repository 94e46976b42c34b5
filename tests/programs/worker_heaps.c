/*
 * Workers that sort and churn memory: each sorts an array of its own with
 * qsort and fills and frees a few hundred KiB of small blocks, so its
 * malloc arena grows and shrinks. glibc reads the machine's memory size
 * the first time qsort sorts more than 1 KiB, and the kernel's overcommit
 * setting the first time an arena shrinks, in whichever thread gets there
 * first; replay must not see those reads move to another thread. The
 * times they print differ natively.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "common.h"

#define WORKERS 4
#define VALUES 20000
#define BLOCKS 64

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void *worker(void *arg)
{
    long id = (long)arg;
    uint32_t *v = malloc(VALUES * sizeof *v);
    CHECK(v != NULL, "malloc");
    uint32_t s = (uint32_t)id * 2654435761u + 1;
    for (int i = 0; i < VALUES; i++) {
        s = s * 1103515245u + 12345u;
        v[i] = s >> 8;
    }
    qsort(v, VALUES, sizeof *v, by_value);
    uint64_t churn = 0;
    for (int round = 0; round < 3; round++) {
        void *blocks[BLOCKS];
        for (int b = 0; b < BLOCKS; b++) {
            blocks[b] = malloc(8192);
            CHECK(blocks[b] != NULL, "malloc");
            memset(blocks[b], (int)(b + id), 8192);
            churn += ((unsigned char *)blocks[b])[b];
        }
        for (int b = BLOCKS - 1; b >= 0; b--)
            free(blocks[b]);
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    printf("worker %ld median %u churn %llu done at +%ld us\n", id, v[VALUES / 2],
           (unsigned long long)churn, now.tv_nsec / 1000 % 1000000);
    free(v);
    return NULL;
}

int main(void)
{
    pthread_t t[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < WORKERS; i++)
        PCHECK(pthread_join(t[i], NULL));
    return 0;
}
