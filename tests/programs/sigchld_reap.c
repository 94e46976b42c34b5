/*
 * Six forked children print to the shared stdout at staggered times and
 * exit with different codes; the parent reaps them in a SIGCHLD handler
 * while it waits in pause(). The children's lines interleave differently
 * from run to run: replay must print them in the recorded order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define CHILDREN 6

static volatile sig_atomic_t reaped;
static volatile int exit_sum;

static void on_sigchld(int sig)
{
    (void)sig;
    int saved = errno, status;
    while (waitpid(-1, &status, WNOHANG) > 0) {
        if (WIFEXITED(status))
            exit_sum += WEXITSTATUS(status);
        reaped++;
    }
    errno = saved;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigchld;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0, "sigaction");
    for (int i = 0; i < CHILDREN; i++) {
        pid_t pid = fork();
        CHECK(pid >= 0, "fork");
        if (pid == 0) {
            usleep(1000 * (i * 3 % 5));
            printf("child %d: pid %d, parent %d\n", i, (int)getpid(), (int)getppid());
            fflush(stdout);
            _exit(10 + i);
        }
    }
    while (reaped < CHILDREN)
        pause();
    printf("sigchld_reap: reaped %d, exit codes sum to %d\n", (int)reaped, exit_sum);
    return 0;
}
