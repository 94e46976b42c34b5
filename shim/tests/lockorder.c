/* Test program for librrc_shim.so (driven by tests/lockorder.rs).
 *
 * Nothing registers threads in the sync log here except the test itself,
 * so every mode first says who it is (pid or tids on stdout) and then waits
 * for one byte on stdin before its first synchronisation operation.
 *
 *   single        one thread, every interposed operation once or twice
 *   many N        one thread, N lock/unlock pairs
 *   threads N     two threads (A, B) each appending their name N times under
 *                 one mutex; prints the resulting order
 *   pingpong N    two threads alternating strictly through a condvar
 *   fork          lock, fork, the child locks, the parent locks again
 *   mixed         pass-through workout: four threads, every primitive
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <stdarg.h>

/* Output through write(2), not stdio: the shim orders stdio's stream
 * locks like mutexes, and the tests here count only the operations they
 * make themselves. */
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        abort();
    va_start(ap, fmt);
    vsnprintf(buf, (size_t)n + 1, fmt, ap);
    va_end(ap);
    for (int done = 0; done < n;) {
        ssize_t w = write(1, buf + done, (size_t)(n - done));
        if (w <= 0)
            break;
        done += (int)w;
    }
    free(buf);
}

static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static pthread_rwlock_t rwlock = PTHREAD_RWLOCK_INITIALIZER;
static sem_t sem;
static pthread_spinlock_t spin;
static pthread_barrier_t barrier;

static struct timespec in_ms(clockid_t clock, long ms) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    ts.tv_nsec += (ms % 1000) * 1000000L;
    ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    return ts;
}

static void wait_for_go(void) {
    char byte;
    if (read(0, &byte, 1) != 1)
        exit(3);
}

static int startup_errno;

static int single(void) {
    struct timespec ts;
    int r;

    say("errno %d\n", startup_errno);
    sem_init(&sem, 0, 0);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_barrier_init(&barrier, NULL, 1);
    say("mutex %p\nrwlock %p\nsem %p\nspin %p\nbarrier %p\nready\n", (void *)&mutex,
           (void *)&rwlock, (void *)&sem, (void *)&spin, (void *)&barrier);
    
    wait_for_go();

    r = pthread_mutex_lock(&mutex);
    say("mutex_lock %d\n", r);
    r = pthread_mutex_trylock(&mutex);
    say("mutex_trylock_held %d\n", r);
    pthread_mutex_unlock(&mutex);
    r = pthread_mutex_trylock(&mutex);
    say("mutex_trylock_free %d\n", r);
    if (r == 0)
        pthread_mutex_unlock(&mutex);
    ts = in_ms(CLOCK_REALTIME, 1000);
    r = pthread_mutex_timedlock(&mutex, &ts);
    say("mutex_timedlock %d\n", r);
    if (r == 0)
        pthread_mutex_unlock(&mutex);
    ts = in_ms(CLOCK_MONOTONIC, 1000);
    r = pthread_mutex_clocklock(&mutex, CLOCK_MONOTONIC, &ts);
    say("mutex_clocklock %d\n", r);

    /* Still holding the mutex from clocklock. */
    ts = in_ms(CLOCK_REALTIME, 5);
    r = pthread_cond_timedwait(&cond, &mutex, &ts);
    say("cond_timedwait %d\n", r);
    ts = in_ms(CLOCK_MONOTONIC, 5);
    r = pthread_cond_clockwait(&cond, &mutex, CLOCK_MONOTONIC, &ts);
    say("cond_clockwait %d\n", r);
    say("cond_signal %d\n", pthread_cond_signal(&cond));
    say("cond_broadcast %d\n", pthread_cond_broadcast(&cond));
    pthread_mutex_unlock(&mutex);

    r = pthread_rwlock_rdlock(&rwlock);
    say("rdlock %d\n", r);
    r = pthread_rwlock_tryrdlock(&rwlock);
    say("tryrdlock_shared %d\n", r);
    r = pthread_rwlock_trywrlock(&rwlock);
    say("trywrlock_busy %d\n", r);
    pthread_rwlock_unlock(&rwlock);
    pthread_rwlock_unlock(&rwlock);
    r = pthread_rwlock_wrlock(&rwlock);
    say("wrlock %d\n", r);
    r = pthread_rwlock_tryrdlock(&rwlock);
    say("tryrdlock_busy %d\n", r);
    pthread_rwlock_unlock(&rwlock);
    ts = in_ms(CLOCK_REALTIME, 1000);
    r = pthread_rwlock_timedrdlock(&rwlock, &ts);
    say("timedrdlock %d\n", r);
    pthread_rwlock_unlock(&rwlock);
    r = pthread_rwlock_timedwrlock(&rwlock, &ts);
    say("timedwrlock %d\n", r);
    pthread_rwlock_unlock(&rwlock);
    ts = in_ms(CLOCK_MONOTONIC, 1000);
    r = pthread_rwlock_clockrdlock(&rwlock, CLOCK_MONOTONIC, &ts);
    say("clockrdlock %d\n", r);
    pthread_rwlock_unlock(&rwlock);
    r = pthread_rwlock_clockwrlock(&rwlock, CLOCK_MONOTONIC, &ts);
    say("clockwrlock %d\n", r);
    pthread_rwlock_unlock(&rwlock);

    errno = 0;
    r = sem_trywait(&sem);
    say("sem_trywait_empty %d %d\n", r, r == 0 ? 0 : errno);
    sem_post(&sem);
    r = sem_wait(&sem);
    say("sem_wait %d\n", r);
    ts = in_ms(CLOCK_REALTIME, 5);
    errno = 0;
    r = sem_timedwait(&sem, &ts);
    say("sem_timedwait_empty %d %d\n", r, r == 0 ? 0 : errno);
    sem_post(&sem);
    ts = in_ms(CLOCK_MONOTONIC, 1000);
    r = sem_clockwait(&sem, CLOCK_MONOTONIC, &ts);
    say("sem_clockwait %d\n", r);

    r = pthread_spin_lock(&spin);
    say("spin_lock %d\n", r);
    r = pthread_spin_trylock(&spin);
    say("spin_trylock_held %d\n", r);
    pthread_spin_unlock(&spin);
    r = pthread_spin_trylock(&spin);
    say("spin_trylock_free %d\n", r);
    if (r == 0)
        pthread_spin_unlock(&spin);

    r = pthread_barrier_wait(&barrier);
    say("barrier_wait %d\n", r);
    say("done\n");
    return 0;
}

static int many(int iterations) {
    say("ready\n");
    
    wait_for_go();
    for (int i = 0; i < iterations; i++) {
        if (pthread_mutex_lock(&mutex) != 0)
            return 1;
        pthread_mutex_unlock(&mutex);
    }
    say("done\n");
    return 0;
}

/* --- two named workers ------------------------------------------------ */

static atomic_int go_flag, started;
static char order[1 << 16];
static int order_len;
static int owner; /* pingpong: whose turn it is, 0 = A */

struct worker {
    pthread_t thread;
    char name;
    int me;
    int iterations;
};

/* Says which tid this worker has, then waits until main reads the go byte. */
static void announce_and_wait(const struct worker *w) {
    /* Own CPU each where there are two, so the workers really overlap. */
    if (sysconf(_SC_NPROCESSORS_ONLN) >= 2) {
        cpu_set_t cpus;
        CPU_ZERO(&cpus);
        CPU_SET(w->me, &cpus);
        pthread_setaffinity_np(pthread_self(), sizeof cpus, &cpus);
    }
    say("tid %c %ld\n", w->name, (long)syscall(SYS_gettid));
    
    while (!atomic_load(&go_flag))
        usleep(200);
    /* Start together (spinning, not through the shim) so the workers overlap. */
    atomic_fetch_add(&started, 1);
    while (atomic_load(&started) < 2)
        ;
}

/* A little work between acquisitions, so that the workers overlap. */
static void outside_work(void) {
    for (volatile int i = 0; i < 5000; i++)
        ;
}

static void *counter_worker(void *arg) {
    struct worker *w = arg;
    announce_and_wait(w);
    for (int i = 0; i < w->iterations; i++) {
        pthread_mutex_lock(&mutex);
        order[order_len++] = w->name;
        pthread_mutex_unlock(&mutex);
        outside_work();
    }
    return NULL;
}

static void *pingpong_worker(void *arg) {
    struct worker *w = arg;
    announce_and_wait(w);
    for (int i = 0; i < w->iterations; i++) {
        pthread_mutex_lock(&mutex);
        while (owner != w->me)
            pthread_cond_wait(&cond, &mutex);
        order[order_len++] = w->name;
        owner = 1 - w->me;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mutex);
    }
    return NULL;
}

static int two_workers(void *(*body)(void *), int iterations) {
    struct worker workers[2] = {{.name = 'A', .me = 0}, {.name = 'B', .me = 1}};
    if (iterations * 2 >= (int)sizeof order)
        return 2;
    for (int i = 0; i < 2; i++) {
        workers[i].iterations = iterations;
        pthread_create(&workers[i].thread, NULL, body, &workers[i]);
    }
    wait_for_go();
    atomic_store(&go_flag, 1);
    for (int i = 0; i < 2; i++)
        pthread_join(workers[i].thread, NULL);
    order[order_len] = 0;
    say("order %s\n", order);
    return 0;
}

static int fork_mode(void) {
    say("ready\n");
    
    wait_for_go();
    pthread_mutex_lock(&mutex);
    pthread_mutex_unlock(&mutex);
    pid_t child = fork();
    if (child < 0)
        return 1;
    if (child == 0) {
        say("child %ld\n", (long)getpid());
        
        wait_for_go();
        int r = pthread_mutex_lock(&mutex);
        pthread_mutex_unlock(&mutex);
        _exit(r);
    }
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return 1;
    pthread_mutex_lock(&mutex);
    pthread_mutex_unlock(&mutex);
    say("done\n");
    return 0;
}

/* --- pass-through workout --------------------------------------------- */

enum { MIXED_THREADS = 4, MIXED_ROUNDS = 500 };
static long mutex_count, rwlock_count, sem_count, spin_count, trylock_count;

static void *mixed_worker(void *arg) {
    (void)arg;
    for (int i = 0; i < MIXED_ROUNDS; i++) {
        pthread_mutex_lock(&mutex);
        mutex_count++;
        pthread_mutex_unlock(&mutex);

        while (pthread_mutex_trylock(&mutex) != 0)
            ;
        trylock_count++;
        pthread_mutex_unlock(&mutex);

        pthread_rwlock_wrlock(&rwlock);
        rwlock_count++;
        pthread_rwlock_unlock(&rwlock);
        pthread_rwlock_rdlock(&rwlock);
        (void)rwlock_count;
        pthread_rwlock_unlock(&rwlock);

        sem_wait(&sem);
        sem_count++;
        sem_post(&sem);

        pthread_spin_lock(&spin);
        spin_count++;
        pthread_spin_unlock(&spin);

        if (i % 100 == 0)
            pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static int mixed(void) {
    pthread_t threads[MIXED_THREADS];
    sem_init(&sem, 0, 1);
    pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE);
    pthread_barrier_init(&barrier, NULL, MIXED_THREADS);
    for (int i = 0; i < MIXED_THREADS; i++)
        pthread_create(&threads[i], NULL, mixed_worker, NULL);
    for (int i = 0; i < MIXED_THREADS; i++)
        pthread_join(threads[i], NULL);
    long want = MIXED_THREADS * MIXED_ROUNDS;
    if (mutex_count != want || trylock_count != want || rwlock_count != want ||
        sem_count != want || spin_count != want) {
        say("mixed wrong %ld %ld %ld %ld %ld\n", mutex_count, trylock_count, rwlock_count,
               sem_count, spin_count);
        return 1;
    }
    say("mixed ok\n");
    return 0;
}

int main(int argc, char **argv) {
    startup_errno = errno; /* C says 0: the shim's constructor must keep it so */
    const char *mode = argc > 1 ? argv[1] : "";
    int count = argc > 2 ? atoi(argv[2]) : 0;
    if (strcmp(mode, "single") == 0)
        return single();
    if (strcmp(mode, "many") == 0)
        return many(count);
    if (strcmp(mode, "threads") == 0)
        return two_workers(counter_worker, count);
    if (strcmp(mode, "pingpong") == 0)
        return two_workers(pingpong_worker, count);
    if (strcmp(mode, "fork") == 0)
        return fork_mode();
    if (strcmp(mode, "mixed") == 0)
        return mixed();
    fprintf(stderr, "unknown mode '%s'\n", mode);
    return 2;
}
