/* Workers on a C11 <threads.h> queue (thrd_create, mtx_t, cnd_t), each
 * printing the jobs it takes: glibc implements these with its pthread
 * functions, called inside libc where no interposition reaches them, so
 * the shim defines the C11 functions itself. */
#include <stdio.h>
#include <threads.h>
#include <time.h>
static mtx_t m; static cnd_t c; static int queue[1000]; static int head, tail, done;
static int worker(void *arg) {
    long id = (long)arg; long sum = 0; int n = 0;
    for (;;) {
        mtx_lock(&m);
        while (head == tail && !done) cnd_wait(&c, &m);
        if (head == tail && done) { mtx_unlock(&m); break; }
        int j = queue[head++];
        mtx_unlock(&m);
        sum += j; n++;
        struct timespec ts; timespec_get(&ts, TIME_UTC);
        printf("worker %ld took %d\n", id, j);
    }
    printf("worker %ld: %d jobs sum %ld\n", id, n, sum);
    return 0;
}
int main(void) {
    mtx_init(&m, mtx_plain); cnd_init(&c);
    thrd_t t[4];
    for (long i = 0; i < 4; i++) thrd_create(&t[i], worker, (void *)i);
    for (int i = 0; i < 400; i++) {
        mtx_lock(&m); queue[tail++] = i; cnd_signal(&c); mtx_unlock(&m);
        if (i % 50 == 0) { struct timespec d = {0, 100000}; thrd_sleep(&d, NULL); }
    }
    mtx_lock(&m); done = 1; cnd_broadcast(&c); mtx_unlock(&m);
    for (int i = 0; i < 4; i++) thrd_join(t[i], NULL);
    return 0;
}
