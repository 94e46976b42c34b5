/*
 * A signal handler runs while a thread is blocked in read() on a pipe:
 * the handler is installed without SA_RESTART, so read() fails with
 * EINTR and the reader retries. A second thread, each round, waits for
 * the reader to be about to block, pthread_kills it with SIGUSR1 until
 * the reader reports the EINTR, then writes the round's data. How many
 * signals each round takes (one landing before the read blocks is
 * handled without interrupting anything) depends on timing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define ROUNDS 12

static volatile sig_atomic_t handled;
static int pipefd[2];
/* Round numbers, under the lock: the reader is about to block in read()
 * for round `waiting`, and has seen EINTR in round `interrupted`. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int waiting = -1, interrupted = -1;

static void set_round(int *what, int r)
{
    PCHECK(pthread_mutex_lock(&lock));
    *what = r;
    PCHECK(pthread_cond_broadcast(&changed));
    PCHECK(pthread_mutex_unlock(&lock));
}

static void on_usr1(int sig)
{
    (void)sig;
    handled++;
}

static void sleep_us(long us)
{
    struct timespec req = {0, us * 1000}, rem;
    while (nanosleep(&req, &rem) != 0) {
        CHECK(errno == EINTR, "nanosleep");
        req = rem;
    }
}

static void *reader(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        set_round(&waiting, r);
        int eintr = 0;
        char buf[64];
        ssize_t n;
        for (;;) {
            n = read(pipefd[0], buf, sizeof buf - 1);
            if (n < 0 && errno == EINTR) {
                eintr++;
                set_round(&interrupted, r);
                continue;
            }
            break;
        }
        CHECK(n > 0, "read");
        buf[n] = '\0';
        printf("round %2d: read %zd bytes \"%.*s\" after %d EINTR, %d signals handled\n", r, n,
               (int)(n - 1), buf, eintr, (int)handled);
        fflush(stdout);
    }
    return NULL;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = 0; /* no SA_RESTART: a blocked read fails with EINTR */
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    CHECK(pipe(pipefd) == 0, "pipe");

    pthread_t th;
    PCHECK(pthread_create(&th, NULL, reader, NULL));
    int sent = 0;
    for (int r = 0; r < ROUNDS; r++) {
        PCHECK(pthread_mutex_lock(&lock));
        while (waiting != r)
            PCHECK(pthread_cond_wait(&changed, &lock));
        PCHECK(pthread_mutex_unlock(&lock));
        /* Give the reader time to block in read(). */
        sleep_us(1000);
        for (;;) {
            PCHECK(pthread_mutex_lock(&lock));
            int done = interrupted == r;
            PCHECK(pthread_mutex_unlock(&lock));
            if (done)
                break;
            PCHECK(pthread_kill(th, SIGUSR1));
            sent++;
            sleep_us(500);
        }
        char msg[32];
        int len = snprintf(msg, sizeof msg, "data %d\n", r);
        CHECK(write(pipefd[1], msg, (size_t)len) == len, "write");
    }
    PCHECK(pthread_join(th, NULL));
    printf("eintr_read: %d rounds, %d signals sent, %d handled\n", ROUNDS, sent, (int)handled);
    return 0;
}
