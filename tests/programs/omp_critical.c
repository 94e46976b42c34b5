/* OpenMP threads share a loop with a dynamic schedule and print from an
 * unnamed critical section, a named one and under an omp_lock_t, with
 * output fully buffered when it is a pipe or a file. Which thread gets
 * which iterations, and each lock first, decides every line; libgomp
 * decides both with atomics and raw futex calls. */
#include <omp.h>
#include <stdio.h>
#include <time.h>

int main(void)
{
    long sum = 0;
    long seen = 0;
    omp_lock_t lock;
    omp_init_lock(&lock);
#pragma omp parallel for num_threads(4) reduction(+ : sum) schedule(dynamic, 7)
    for (int i = 0; i < 400; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        sum += i * (ts.tv_nsec % 7);
        if (i % 25 == 0) {
#pragma omp critical
            printf("thread %d at %d\n", omp_get_thread_num(), i);
        }
        if (i % 40 == 3) {
#pragma omp critical(tally)
            {
                seen++;
                printf("tally %ld by thread %d at %d\n", seen, omp_get_thread_num(), i);
            }
        }
        if (i % 60 == 5) {
            omp_set_lock(&lock);
            printf("locked by thread %d at %d\n", omp_get_thread_num(), i);
            omp_unset_lock(&lock);
        }
    }
    omp_destroy_lock(&lock);
    printf("sum %ld\n", sum);
    return 0;
}
