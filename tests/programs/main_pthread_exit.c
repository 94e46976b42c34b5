/* The main thread ends with pthread_exit while another thread joins it
 * and prints: the main thread stays a zombie, which the kernel reports
 * only when the last thread ends. Replay in segments must not wait for it
 * to reach a next event it will never have. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_t main_thread;

static void *joiner(void *arg)
{
    (void)arg;
    if (pthread_join(main_thread, NULL) != 0)
        return NULL;
    printf("main thread joined; pid %d\n", (int)getpid() > 0);
    fflush(stdout);
    return NULL;
}

int main(void)
{
    pthread_t t;
    main_thread = pthread_self();
    if (pthread_create(&t, NULL, joiner, NULL) != 0)
        return 1;
    pthread_exit(NULL);
}
