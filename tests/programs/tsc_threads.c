/* Threads that read the time-stamp counter (rdtsc and rdtscp, inline in
 * this program, so rrc patches them) and the clocks (through the shim,
 * which reads them through the vDSO once rdtsc no longer traps: after
 * 1,000 such calls a thread leaves the trap), and print what they read:
 * each native run prints other values. The replay
 * must print the recorded ones. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <x86intrin.h>

#define THREADS 4
#define ROUNDS 600

static pthread_mutex_t out = PTHREAD_MUTEX_INITIALIZER;

static void *reader(void *arg)
{
    long id = (long)arg;
    uint64_t mix = 0;
    for (int i = 0; i < ROUNDS; i++) {
        unsigned aux;
        uint64_t a = __rdtsc();
        struct timespec ts;
        clock_gettime(i % 2 ? CLOCK_MONOTONIC : CLOCK_REALTIME, &ts);
        struct timeval tv;
        gettimeofday(&tv, NULL);
        uint64_t b = __rdtscp(&aux);
        mix = mix * 31 + (b - a) + (uint64_t)ts.tv_nsec + (uint64_t)tv.tv_usec + aux;
        if (i % 100 == 0) {
            pthread_mutex_lock(&out);
            printf("thread %ld round %d: %llu\n", id, i, (unsigned long long)(mix % 1000003));
            pthread_mutex_unlock(&out);
        }
    }
    pthread_mutex_lock(&out);
    printf("thread %ld: %llu\n", id, (unsigned long long)(mix % 1000003));
    pthread_mutex_unlock(&out);
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    printf("start %llu\n", (unsigned long long)(__rdtsc() % 1000003));
    for (long i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, reader, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("time %ld\n", (long)(time(NULL) % 7));
    return 0;
}
