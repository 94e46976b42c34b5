/* Threads take a test-and-set spin lock (a C11 atomic_flag: no call while
 * they spin) and print under it through stdio, which rrc orders, and now
 * and then write(2) under it too. Which thread gets the spin lock is a
 * race rrc does not see; when replay orders stdout's lock one way and the
 * spin lock went another, a thread waits for its stdio turn while the
 * threads whose turns come first spin on the lock it holds. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

static atomic_flag lock = ATOMIC_FLAG_INIT;

static void *worker(void *arg) {
    long id = (long)arg;
    for (int i = 0; i < 8; i++) {
        struct timespec pause = {0, 300000};
        nanosleep(&pause, NULL);
        while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
        }
        printf("thread %ld turn %d\n", id, i);
        if (i == 4) {
            static const char mark[] = "mark\n";
            if (write(2, mark, sizeof mark - 1) < 0)
                return NULL;
        }
        atomic_flag_clear_explicit(&lock, memory_order_release);
    }
    return NULL;
}

int main(void) {
    pthread_t threads[4];
    for (long i = 0; i < 4; i++)
        pthread_create(&threads[i], NULL, worker, (void *)i);
    for (int i = 0; i < 4; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
