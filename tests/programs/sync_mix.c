/*
 * Semaphores, a spinlock, a barrier and trylock, with four threads.
 * Phase 1: threads take tokens posted by the main thread through a
 *          counting semaphore (sem_wait / sem_trywait); who got which
 *          token varies.
 * Phase 2: a spinlock-protected tally of per-thread turns.
 * Phase 3: after a barrier, threads hammer pthread_mutex_trylock; how
 *          many attempts succeeded per thread varies.
 * All shared state is touched only under a pthread lock or spinlock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <unistd.h>

#include "common.h"

#define NTHREADS 4
#define NTOKENS 200
#define SPINS 3000
#define TRIES 3000

static sem_t tokens;
static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t contested = PTHREAD_MUTEX_INITIALIZER;
static pthread_spinlock_t spin;
static pthread_barrier_t barrier;

static int next_token, taken_by[NTOKENS], tokens_of[NTHREADS], trywaits_ok[NTHREADS];
static unsigned char spin_order[NTHREADS * SPINS];
static int nspin;
static int try_ok[NTHREADS], try_busy[NTHREADS];
static long in_critical;

static void *worker(void *arg)
{
    int id = (int)(long)arg;

    /* Phase 1: tokens. */
    for (;;) {
        int r = sem_trywait(&tokens);
        if (r != 0) {
            CHECK(errno == EAGAIN, "sem_trywait");
            CHECK(sem_wait(&tokens) == 0, "sem_wait");
        }
        PCHECK(pthread_mutex_lock(&m));
        int t = next_token++;
        if (t < NTOKENS) {
            taken_by[t] = id;
            tokens_of[id]++;
            trywaits_ok[id] += r == 0;
        }
        PCHECK(pthread_mutex_unlock(&m));
        if (t >= NTOKENS)
            break; /* one of the NTHREADS stop tokens */
    }

    /* Phase 2: spinlock. */
    for (int i = 0; i < SPINS; i++) {
        PCHECK(pthread_spin_lock(&spin));
        spin_order[nspin++] = (unsigned char)id;
        PCHECK(pthread_spin_unlock(&spin));
    }

    int rc = pthread_barrier_wait(&barrier);
    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait");

    /* Phase 3: trylock. */
    for (int i = 0; i < TRIES; i++) {
        int r = pthread_mutex_trylock(&contested);
        if (r == 0) {
            in_critical += id + 1;
            volatile unsigned x = 1;
            for (int k = 0; k < 30; k++)
                x *= 3;
            PCHECK(pthread_mutex_unlock(&contested));
            PCHECK(pthread_mutex_lock(&m));
            try_ok[id]++;
            PCHECK(pthread_mutex_unlock(&m));
        } else {
            CHECK(r == EBUSY, "pthread_mutex_trylock");
            PCHECK(pthread_mutex_lock(&m));
            try_busy[id]++;
            PCHECK(pthread_mutex_unlock(&m));
        }
    }
    return NULL;
}

int main(void)
{
    CHECK(sem_init(&tokens, 0, 0) == 0, "sem_init");
    PCHECK(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE));
    PCHECK(pthread_barrier_init(&barrier, NULL, NTHREADS));

    pthread_t th[NTHREADS];
    for (long i = 0; i < NTHREADS; i++)
        PCHECK(pthread_create(&th[i], NULL, worker, (void *)i));
    for (int i = 0; i < NTOKENS + NTHREADS; i++) {
        CHECK(sem_post(&tokens) == 0, "sem_post");
        if (i % 50 == 0)
            usleep(200);
    }
    for (int i = 0; i < NTHREADS; i++)
        PCHECK(pthread_join(th[i], NULL));

    int switches = 0;
    for (int i = 1; i < nspin; i++)
        switches += spin_order[i] != spin_order[i - 1];
    printf("tokens by thread: ");
    for (int i = 0; i < NTHREADS; i++)
        printf("%d%s", tokens_of[i], i + 1 < NTHREADS ? " " : "\n");
    printf("tokens taken without waiting: ");
    for (int i = 0; i < NTHREADS; i++)
        printf("%d%s", trywaits_ok[i], i + 1 < NTHREADS ? " " : "\n");
    printf("tokens (first 60): ");
    for (int i = 0; i < 60; i++)
        printf("%d", taken_by[i]);
    printf("\nspin order fnv1a %016llx, hand-overs %d\n",
           (unsigned long long)fnv1a(spin_order, (size_t)nspin), switches);
    for (int i = 0; i < NTHREADS; i++)
        printf("thread %d: trylock ok %d, busy %d\n", i, try_ok[i], try_busy[i]);
    printf("critical tally: %ld\n", in_critical);

    sem_destroy(&tokens);
    pthread_spin_destroy(&spin);
    pthread_barrier_destroy(&barrier);
    return 0;
}
