/*
 * Threads write(2) lines straight to copies of stdout (made with dup,
 * dup2 and fcntl's F_DUPFD_CLOEXEC), no stdio: the lines come out in the
 * order the threads' writes reach the kernel, which depends on timing.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "common.h"

#define THREADS 4
#define LINES 150

static int copies[3];

static void *writer(void *arg)
{
    long id = (long)arg;
    int fd = copies[id % 3];
    char line[64];
    for (int i = 0; i < LINES; i++) {
        int n = snprintf(line, sizeof line, "thread %ld line %d\n", id, i);
        CHECK(write(fd, line, (size_t)n) == n, "write");
    }
    return NULL;
}

int main(void)
{
    copies[0] = dup(1);
    CHECK(copies[0] >= 0, "dup");
    copies[1] = dup2(1, 20);
    CHECK(copies[1] == 20, "dup2");
    copies[2] = fcntl(1, F_DUPFD_CLOEXEC, 30);
    CHECK(copies[2] >= 30, "fcntl");
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, writer, (void *)i) == 0, "pthread_create");
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0, "pthread_join");
    return 0;
}
