/*
 * A pipe between two threads: a writer thread sends messages of random
 * sizes with random pauses; the main thread reads with a small buffer
 * and prints the sizes its reads returned, which depend on timing.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define NMSG 60

static int fds[2];

static void *writer(void *arg)
{
    (void)arg;
    unsigned char rnd[2 * NMSG];
    CHECK(getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd, "getrandom");
    char msg[256];
    for (int i = 0; i < NMSG; i++) {
        size_t len = 1 + rnd[2 * i] % 150;
        for (size_t k = 0; k < len; k++)
            msg[k] = (char)('a' + (i + k) % 26);
        CHECK(write(fds[1], msg, len) == (ssize_t)len, "write pipe");
        if (rnd[2 * i + 1] % 4 == 0)
            usleep(rnd[2 * i + 1] * 2);
    }
    CHECK(close(fds[1]) == 0, "close");
    return NULL;
}

int main(void)
{
    CHECK(pipe(fds) == 0, "pipe");
    struct timespec t0, t1;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t0) == 0, "clock_gettime");
    pthread_t th;
    PCHECK(pthread_create(&th, NULL, writer, NULL));

    char buf[64];
    char all[NMSG * 256];
    size_t total = 0;
    int reads = 0;
    printf("read sizes:");
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        CHECK(n >= 0, "read pipe");
        if (n == 0)
            break;
        memcpy(all + total, buf, (size_t)n);
        total += (size_t)n;
        reads++;
        printf(" %zd", n);
    }
    printf("\n");
    PCHECK(pthread_join(th, NULL));
    CHECK(close(fds[0]) == 0, "close");
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "clock_gettime");
    long us = (long)(t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
    printf("reads: %d, bytes: %zu, fnv1a %016llx, elapsed %ld us\n", reads, total,
           (unsigned long long)fnv1a(all, total), us);
    return 0;
}
