/* Main returns while its workers are still printing, as programs that
 * never join their threads do: exit flushes stdout, and how much of the
 * workers' output it carries, and which of their lines make it out at
 * all, depends on where the exit fell among their printfs. With "flush"
 * each worker flushes after every line; otherwise stdout keeps its own
 * buffering (full, to a pipe or a file), and exit's flush carries lines
 * of every thread. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static int flush_each;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0;; i++) {
        printf("worker %ld line %d\n", id, i);
        if (flush_each)
            fflush(stdout);
        usleep(700);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    flush_each = argc > 1 && strcmp(argv[1], "flush") == 0;
    for (long i = 0; i < 3; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, worker, (void *)i) == 0, "pthread_create");
    }
    usleep(10000);
    printf("main returns\n");
    return 0;
}
