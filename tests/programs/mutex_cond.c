/*
 * Four worker threads contend on one mutex. Phase 1: each appends its id
 * to a shared order log under the mutex, many times; the log shows the
 * order in which the threads got the lock, which varies from run to run.
 * Phase 2: the main thread produces work items into a bounded queue
 * guarded by the same mutex and two condition variables; which worker
 * gets which item varies too. Workers wait on a condition variable for a
 * start signal before phase 1.
 *
 * Every shared variable is touched only under the mutex: the program is
 * free of data races, so lock order alone decides its output.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <unistd.h>

#include "common.h"

#define NTHREADS 4
#define ITERS 2500
#define NITEMS 400
#define QCAP 8

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t go_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t work_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t space_cv = PTHREAD_COND_INITIALIZER;

static int go;
static long counter;
static unsigned char order[NTHREADS * ITERS];
static int norder;

static int queue[QCAP];
static int qhead, qcount, producing_done;
static int got_by[NITEMS];
static long items_of[NTHREADS], sum_of[NTHREADS];

static void *worker(void *arg)
{
    int id = (int)(long)arg;

    PCHECK(pthread_mutex_lock(&lock));
    while (!go)
        PCHECK(pthread_cond_wait(&go_cv, &lock));
    PCHECK(pthread_mutex_unlock(&lock));

    for (int i = 0; i < ITERS; i++) {
        PCHECK(pthread_mutex_lock(&lock));
        counter++;
        order[norder++] = (unsigned char)id;
        PCHECK(pthread_mutex_unlock(&lock));
        /* A little private work between acquisitions. */
        volatile unsigned x = (unsigned)i;
        for (int k = 0; k < 40; k++)
            x = x * 1103515245u + 12345u;
    }

    for (;;) {
        PCHECK(pthread_mutex_lock(&lock));
        while (qcount == 0 && !producing_done)
            PCHECK(pthread_cond_wait(&work_cv, &lock));
        if (qcount == 0) {
            PCHECK(pthread_mutex_unlock(&lock));
            break;
        }
        int item = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qcount--;
        got_by[item] = id;
        items_of[id]++;
        sum_of[id] += item;
        PCHECK(pthread_cond_signal(&space_cv));
        PCHECK(pthread_mutex_unlock(&lock));
    }
    return NULL;
}

int main(void)
{
    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        PCHECK(pthread_create(&th[i], NULL, worker, (void *)i));

    /* Let the workers block on the condition variable first. */
    usleep(5000);
    PCHECK(pthread_mutex_lock(&lock));
    go = 1;
    PCHECK(pthread_cond_broadcast(&go_cv));
    PCHECK(pthread_mutex_unlock(&lock));

    for (int item = 0; item < NITEMS; item++) {
        PCHECK(pthread_mutex_lock(&lock));
        while (qcount == QCAP)
            PCHECK(pthread_cond_wait(&space_cv, &lock));
        queue[(qhead + qcount) % QCAP] = item;
        qcount++;
        PCHECK(pthread_cond_signal(&work_cv));
        PCHECK(pthread_mutex_unlock(&lock));
    }
    PCHECK(pthread_mutex_lock(&lock));
    producing_done = 1;
    PCHECK(pthread_cond_broadcast(&work_cv));
    PCHECK(pthread_mutex_unlock(&lock));

    for (int i = 0; i < NTHREADS; i++)
        PCHECK(pthread_join(th[i], NULL));

    int switches = 0;
    for (int i = 1; i < norder; i++)
        switches += order[i] != order[i - 1];
    printf("counter: %ld (expected %d)\n", counter, NTHREADS * ITERS);
    printf("lock order fnv1a: %016llx, hand-overs: %d\n",
           (unsigned long long)fnv1a(order, (size_t)norder), switches);
    printf("lock order (first 64): ");
    for (int i = 0; i < 64 && i < norder; i++)
        printf("%d", order[i]);
    printf("\nlock order (last 64):  ");
    for (int i = norder > 64 ? norder - 64 : 0; i < norder; i++)
        printf("%d", order[i]);
    printf("\n");
    printf("first to the lock: thread %d, last: thread %d\n", order[0],
           order[norder - 1]);
    for (int i = 0; i < NTHREADS; i++)
        printf("worker %d: %ld items, sum %ld\n", i, items_of[i], sum_of[i]);
    printf("items (first 80): ");
    for (int i = 0; i < 80; i++)
        printf("%d", got_by[i]);
    printf("\n");
    fprintf(stderr, "mutex_cond: %d hand-overs\n", switches);
    return 0;
}
