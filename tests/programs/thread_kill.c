/*
 * Signals between threads: a worker thread sends SIGUSR1 to the main
 * thread with pthread_kill at irregular intervals while the main thread
 * alternates nanosleep and pure computation, printing how many SIGUSR1
 * its handler has counted at each iteration; the main thread in turn
 * sends SIGUSR2 to the worker now and then. Where each signal lands (and
 * whether two pending ones merge) depends on timing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define SENDS 30
#define ITERATIONS 40

static volatile sig_atomic_t usr1_seen, usr2_seen;
static pthread_t main_thread;
/* Set under the lock by the worker before it returns: while the main
 * thread holds the lock and sees 0, the worker is alive. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int worker_done;

static void on_usr1(int sig)
{
    (void)sig;
    usr1_seen++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2_seen++;
}

static void sleep_ns(long ns)
{
    struct timespec req = {0, ns}, rem;
    while (nanosleep(&req, &rem) != 0) {
        CHECK(errno == EINTR, "nanosleep");
        req = rem;
    }
}

static uint64_t compute(uint64_t seed)
{
    uint64_t x = seed | 1;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

static int done_pipe[2];

static void *worker(void *arg)
{
    (void)arg;
    unsigned char pause[SENDS];
    CHECK(getrandom(pause, sizeof pause, 0) == (ssize_t)sizeof pause, "getrandom");
    for (int i = 0; i < SENDS; i++) {
        PCHECK(pthread_kill(main_thread, SIGUSR1));
        sleep_ns(300000 + 8000L * pause[i]);
    }
    PCHECK(pthread_mutex_lock(&lock));
    worker_done = 1;
    PCHECK(pthread_mutex_unlock(&lock));
    /* Tell main on a pipe: main waits in read (a traced call), so the last
     * signals land at syscall boundaries. A signal that arrives while a
     * thread blocks in pthread_join (an untraced futex wait) is replayed
     * by elapsed time only: see README, "Not supported yet". */
    CHECK(write(done_pipe[1], "x", 1) == 1, "write");
    return NULL;
}

static void install(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(sig, &sa, NULL) == 0, "sigaction");
}

int main(void)
{
    install(SIGUSR1, on_usr1);
    install(SIGUSR2, on_usr2);
    main_thread = pthread_self();
    CHECK(pipe(done_pipe) == 0, "pipe");
    pthread_t th;
    PCHECK(pthread_create(&th, NULL, worker, NULL));

    uint64_t h = 0;
    int sent_usr2 = 0;
    for (int i = 0; i < ITERATIONS; i++) {
        if (i % 2 == 0)
            sleep_ns(700000);
        else
            h = compute(h + (uint64_t)i);
        if (i % 5 == 4) {
            PCHECK(pthread_mutex_lock(&lock));
            if (!worker_done) {
                PCHECK(pthread_kill(th, SIGUSR2));
                sent_usr2++;
            }
            PCHECK(pthread_mutex_unlock(&lock));
        }
        printf("iteration %2d: SIGUSR1 seen %d\n", i, (int)usr1_seen);
        fflush(stdout);
    }
    char done;
    while (read(done_pipe[0], &done, 1) != 1)
        CHECK(errno == EINTR, "read");
    PCHECK(pthread_join(th, NULL));
    printf("thread_kill: SIGUSR1 sent %d, seen %d; SIGUSR2 sent %d, seen %d; hash %016llx\n",
           SENDS, (int)usr1_seen, sent_usr2, (int)usr2_seen, (unsigned long long)h);
    return usr1_seen > 0 ? 0 : 1;
}
