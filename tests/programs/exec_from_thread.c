/*
 * execve from a thread that is not the main one, while the main thread
 * waits in pthread_join and another thread sleeps in a loop: the kernel
 * ends both and the exec'ing thread takes over the process's id. The new
 * image ("stage2") starts threads of its own that take a mutex, prints
 * its pid and exits with 42.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static char *self;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long total;

static void *execer(void *arg)
{
    (void)arg;
    usleep(2000);
    execl(self, self, "stage2", (char *)NULL);
    perror("execl");
    return NULL;
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static void *adder(void *arg)
{
    for (int i = 0; i < 1000; i++) {
        PCHECK(pthread_mutex_lock(&mu));
        total += (long)arg;
        PCHECK(pthread_mutex_unlock(&mu));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "stage2") == 0) {
        pthread_t t[2];
        for (long i = 0; i < 2; i++)
            PCHECK(pthread_create(&t[i], NULL, adder, (void *)(i + 1)));
        for (int i = 0; i < 2; i++)
            PCHECK(pthread_join(t[i], NULL));
        printf("stage2 pid %d total %ld\n", (int)getpid(), total);
        return 42;
    }
    printf("stage1 pid %d\n", (int)getpid());
    fflush(stdout);
    self = argv[0];
    pthread_t a, b;
    PCHECK(pthread_create(&b, NULL, sleeper, NULL));
    PCHECK(pthread_create(&a, NULL, execer, NULL));
    pthread_join(a, NULL);
    return 1;
}
