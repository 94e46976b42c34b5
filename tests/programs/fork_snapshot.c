/*
 * fork from a multithreaded process: three worker threads bump a counter
 * under a mutex and sleep, while the main thread forks six times without
 * taking the mutex. Each child reports the counter it copied, which
 * depends on how many critical sections ran before the fork: replay must
 * run the fork at its place among the workers' lock operations.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int stop;
static long counter;

static void *worker(void *arg)
{
    (void)arg;
    long rounds = 0;
    for (;;) {
        PCHECK(pthread_mutex_lock(&mu));
        int done = stop;
        if (!done)
            counter++;
        PCHECK(pthread_mutex_unlock(&mu));
        if (done)
            break;
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
        rounds++;
    }
    return (void *)rounds;
}

int main(void)
{
    pthread_t workers[3];
    for (int i = 0; i < 3; i++)
        PCHECK(pthread_create(&workers[i], NULL, worker, NULL));
    usleep(3000);
    for (int i = 0; i < 6; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            char line[96];
            int n = snprintf(line, sizeof line, "child %d (pid %d) copied counter %ld\n", i,
                             (int)getpid(), counter);
            CHECK(write(1, line, n) == n, "write");
            _exit(20 + i);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
        char line[96];
        int n = snprintf(line, sizeof line, "main: child %d exited with %d\n", i,
                         WEXITSTATUS(status));
        CHECK(write(1, line, n) == n, "write");
        usleep(1000);
    }
    PCHECK(pthread_mutex_lock(&mu));
    stop = 1;
    PCHECK(pthread_mutex_unlock(&mu));
    long total = 0;
    for (int i = 0; i < 3; i++) {
        void *rounds;
        PCHECK(pthread_join(workers[i], &rounds));
        total += (long)rounds;
    }
    printf("fork_snapshot: %ld rounds, counter %ld\n", total, counter);
    return 0;
}
