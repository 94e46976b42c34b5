/* Threads take a hand-written futex lock (atomics and the futex syscall,
 * no pthread call rrc could see) around a shared counter and their
 * output. rrc cannot record this lock's order; replay must still end
 * quickly, faithfully or with a divergence, never stall. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

static atomic_int word; /* 0 free, 1 locked, 2 locked with waiters */
static long counter;

static void lock(void)
{
    int c = 0;
    if (atomic_compare_exchange_strong(&word, &c, 1))
        return;
    if (c != 2)
        c = atomic_exchange(&word, 2);
    while (c != 0) {
        syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
        c = atomic_exchange(&word, 2);
    }
}

static void unlock(void)
{
    if (atomic_fetch_sub(&word, 1) != 1) {
        atomic_store(&word, 0);
        syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
}

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < 100; i++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        lock();
        long mine = ++counter;
        /* Output straight to the descriptor, under the unseen lock. */
        char line[64];
        int n = snprintf(line, sizeof line, "worker %ld turn %d counter %ld\n", id, i, mine);
        CHECK(write(1, line, (size_t)n) == n, "write");
        unlock();
    }
    return NULL;
}

int main(void)
{
    pthread_t t[4];
    for (long i = 0; i < 4; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < 4; i++)
        PCHECK(pthread_join(t[i], NULL));
    printf("futex_lock: counter %ld\n", counter);
    return 0;
}
