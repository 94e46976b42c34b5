/*
 * Lazy initialisation with pthread_once, as libraries do it: four workers
 * released together call pthread_once on one control, and its init routine
 * reads a file (syscalls made in whichever thread glibc lets run it) and
 * notes who ran it. Each worker spins a random while first, so which one
 * runs the routine differs between native runs.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"

#define WORKERS 4

static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_barrier_t start;
static long initializer = -1;
static char first_line[64];
static __thread long me;

static void init(void)
{
    initializer = me;
    int fd = open("/etc/passwd", O_RDONLY);
    CHECK(fd >= 0, "open /etc/passwd");
    ssize_t n = read(fd, first_line, sizeof first_line - 1);
    CHECK(n > 0, "read /etc/passwd");
    first_line[strcspn(first_line, ":")] = 0;
    close(fd);
}

static void *worker(void *arg)
{
    me = (long)arg;
    unsigned spin;
    CHECK(getrandom(&spin, sizeof spin, 0) == sizeof spin, "getrandom");
    pthread_barrier_wait(&start);
    for (volatile unsigned i = 0; i < spin % 200000; i++) {
    }
    PCHECK(pthread_once(&once, init));
    printf("worker %ld sees init by %ld (%s)\n", me, initializer, first_line);
    return NULL;
}

int main(void)
{
    pthread_t t[WORKERS];
    PCHECK(pthread_barrier_init(&start, NULL, WORKERS));
    for (long i = 0; i < WORKERS; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < WORKERS; i++)
        PCHECK(pthread_join(t[i], NULL));
    return 0;
}
