/*
 * A signal the program blocks, pending, let through only by the mask
 * ppoll (and pselect) install while they wait: the call returns EINTR at
 * once and the handler runs there. Replay must install that mask too, or
 * the signal stays blocked and the program goes on without its handler.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>

#include "common.h"

static volatile sig_atomic_t handled;

static void on_child(int sig)
{
    (void)sig;
    handled++;
}

static void child_exits_pending(int code)
{
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0)
        _exit(code);
    /* Reaped after the handler: SIGCHLD stays pending till then. */
    struct timespec settle = {0, 10000000};
    nanosleep(&settle, NULL);
}

int main(void)
{
    sigset_t chld, none;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    sigemptyset(&none);
    CHECK(sigprocmask(SIG_BLOCK, &chld, NULL) == 0, "sigprocmask");
    struct sigaction sa = {0};
    sa.sa_handler = on_child;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0, "sigaction");

    child_exits_pending(5);
    int r = ppoll(NULL, 0, NULL, &none);
    printf("ppoll returned %d (%s), handler ran %d time(s)\n", r,
           r < 0 && errno == EINTR ? "EINTR" : "other", (int)handled);
    int status;
    CHECK(wait(&status) > 0, "wait");
    printf("first child exited with %d\n", WEXITSTATUS(status));

    child_exits_pending(6);
    r = pselect(0, NULL, NULL, NULL, NULL, &none);
    printf("pselect returned %d (%s), handler ran %d time(s)\n", r,
           r < 0 && errno == EINTR ? "EINTR" : "other", (int)handled);
    CHECK(wait(&status) > 0, "wait");
    printf("second child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
