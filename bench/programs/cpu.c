/* Two threads doing arithmetic with no system calls, adding their partial
 * results to a shared total under a mutex once every 2^20 iterations, for
 * rrc-bench's `cpu` benchmark.
 *
 * Usage: cpu ITERATIONS_PER_THREAD
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#define THREADS 2
#define ITERATIONS_PER_LOCK (1UL << 20)

static unsigned long iterations_per_thread;
static pthread_mutex_t total_mutex = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long total;

static void *cpu_worker(void *seed_pointer)
{
    unsigned long long state = (unsigned long long)(unsigned long)seed_pointer;
    for (unsigned long i = 1; i <= iterations_per_thread; i++) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        state ^= state >> 29;
        if (i % ITERATIONS_PER_LOCK == 0) {
            pthread_mutex_lock(&total_mutex);
            total += state;
            pthread_mutex_unlock(&total_mutex);
        }
    }
    pthread_mutex_lock(&total_mutex);
    total += state;
    pthread_mutex_unlock(&total_mutex);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ITERATIONS_PER_THREAD\n", argv[0]);
        return 2;
    }
    iterations_per_thread = strtoul(argv[1], NULL, 10);
    pthread_t threads[THREADS];
    for (unsigned long i = 0; i < THREADS; i++) {
        if (pthread_create(&threads[i], NULL, cpu_worker, (void *)(i + 1)) != 0) {
            fprintf(stderr, "pthread_create failed\n");
            return 1;
        }
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    printf("total %llu\n", total);
    return 0;
}
