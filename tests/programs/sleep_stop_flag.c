/* A stop flag with no join after it: workers count under a mutex, print
 * and sleep 50 us until a volatile flag is set; main sleeps, sets the
 * flag, sleeps again and prints the counts without joining (its return
 * ends the workers). Readers of a table behind a rwlock stop on a second
 * flag the writer sets just before it ends. Where each store fell among
 * the other threads' looks decides every count; a store between a sleep
 * and the next call, which rrc cannot see, has its place just before
 * that call's entry. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define WORKERS 3
#define READERS 2

static volatile int stop, writer_done;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static int count[WORKERS], table[8];

static void *worker(void *arg)
{
    long id = (long)arg;
    while (!stop) {
        pthread_mutex_lock(&m);
        printf("worker %ld turn %d\n", id, ++count[id]);
        pthread_mutex_unlock(&m);
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        pthread_rwlock_wrlock(&rw);
        table[i % 8] = i;
        pthread_rwlock_unlock(&rw);
        if (i % 40 == 0)
            usleep(200);
    }
    writer_done = 1;
    return NULL;
}

static void *reader(void *arg)
{
    long id = (long)arg;
    int reads = 0;
    while (!writer_done && reads < 100) {
        pthread_rwlock_rdlock(&rw);
        int sum = 0;
        for (int i = 0; i < 8; i++)
            sum += table[i];
        pthread_rwlock_unlock(&rw);
        pthread_mutex_lock(&m);
        printf("reader %ld read %d sum %d\n", id, ++reads, sum);
        pthread_mutex_unlock(&m);
        usleep(100);
    }
    return NULL;
}

int main(void)
{
    pthread_t t[WORKERS + READERS + 1];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)i) == 0, "pthread_create");
    CHECK(pthread_create(&t[WORKERS], NULL, writer, NULL) == 0, "pthread_create");
    for (long i = 0; i < READERS; i++)
        CHECK(pthread_create(&t[WORKERS + 1 + i], NULL, reader, (void *)i) == 0,
              "pthread_create");
    usleep(3000);
    stop = 1;
    usleep(1000);
    for (int i = WORKERS; i < WORKERS + READERS + 1; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    pthread_mutex_lock(&m);
    printf("counts %d %d %d\n", count[0], count[1], count[2]);
    fflush(stdout);
    pthread_mutex_unlock(&m);
    return 0;
}
