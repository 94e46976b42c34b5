/* Threads draw numbers from libc's shared generators (rand() and
 * random(), whose state glibc locks internally, and lrand48()/drand48(),
 * whose state it does not), after one srand(): which thread gets which
 * numbers depends on the order of their calls, which no pthread call
 * rrc could see decides. Each thread prints what it drew. */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "common.h"

static void *worker(void *arg)
{
    long id = (long)arg;
    long sum = 0, sum48 = 0;
    double d = 0;
    for (int i = 0; i < 3000; i++) {
        sum += rand() % 1000 + random() % 7;
        sum48 += lrand48() % 1000;
        d += drand48();
        if (i % 500 == 0)
            usleep(50);
    }
    printf("thread %ld: rand %ld lrand48 %ld drand48 %.6f\n", id, sum, sum48, d);
    return NULL;
}

int main(void)
{
    srand(7);
    srand48(7);
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < 4; i++)
        PCHECK(pthread_join(t[i], NULL));
    printf("main: next rand %d\n", rand() % 1000);
    return 0;
}
