/* THREADS threads, each doing PAIRS lock/unlock pairs that alternate
 * between a mutex of its own (never contended) and one mutex all threads
 * share (contended), for rrc-bench's `locks` benchmark. Prints the
 * counters so a replay has output to compare.
 *
 * Usage: locks PAIRS_PER_THREAD
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 4

static long pairs_per_thread;
static pthread_mutex_t shared_mutex = PTHREAD_MUTEX_INITIALIZER;
static long shared_counter;

static void *lock_worker(void *unused)
{
    (void)unused;
    pthread_mutex_t private_mutex;
    long private_counter = 0;
    pthread_mutex_init(&private_mutex, NULL);
    for (long i = 0; i < pairs_per_thread; i++) {
        if (i & 1) {
            pthread_mutex_lock(&shared_mutex);
            shared_counter++;
            pthread_mutex_unlock(&shared_mutex);
        } else {
            pthread_mutex_lock(&private_mutex);
            private_counter++;
            pthread_mutex_unlock(&private_mutex);
        }
    }
    pthread_mutex_destroy(&private_mutex);
    return (void *)private_counter;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s PAIRS_PER_THREAD\n", argv[0]);
        return 2;
    }
    pairs_per_thread = atol(argv[1]);
    pthread_t threads[THREADS];
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&threads[i], NULL, lock_worker, NULL) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    long private_total = 0;
    for (int i = 0; i < THREADS; i++) {
        void *result;
        pthread_join(threads[i], &result);
        private_total += (long)result;
    }
    printf("private %ld shared %ld\n", private_total, shared_counter);
    return 0;
}
