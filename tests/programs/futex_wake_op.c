/* FUTEX_WAKE_OP through syscall(): a thread sets a second word and wakes
 * the main thread in one call, which the main thread then reads. The call
 * must happen at its place in the order in replay, not whenever. */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static int word;
static int second;

static void *waker(void *arg)
{
    (void)arg;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long woke = syscall(SYS_futex, &word, FUTEX_WAKE_OP, 1, NULL, &second,
                        FUTEX_OP(FUTEX_OP_SET, 1, FUTEX_OP_CMP_EQ, 0));
    printf("woke %ld, second %d\n", woke, __atomic_load_n(&second, __ATOMIC_SEQ_CST));
    return NULL;
}

int main(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, waker, NULL) != 0)
        return 1;
    long r = syscall(SYS_futex, &word, FUTEX_WAIT, 0, NULL, NULL, 0);
    printf("waited %ld, second %d\n", r, __atomic_load_n(&second, __ATOMIC_SEQ_CST));
    pthread_join(t, NULL);
    return 0;
}
