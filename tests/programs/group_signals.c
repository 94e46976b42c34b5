/*
 * Signals to a whole process group: three children wait in sigsuspend
 * until kill(0, SIGUSR1) from the parent reaches all four processes;
 * then killpg(getpgrp(), SIGUSR2) does the same for the parent and a new
 * child. The tracer must not be in the program's group (the signals would
 * end it), and replay must send them again to the replayed group.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t usr1, usr2;

static void on_usr1(int sig)
{
    (void)sig;
    usr1++;
}

static void on_usr2(int sig)
{
    (void)sig;
    usr2++;
}

static pid_t waiting_child(int i, volatile sig_atomic_t *flag)
{
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        while (!*flag)
            sigsuspend(&none);
        printf("child %d (pid %d) got the group's signal, same group %d\n", i, (int)getpid(),
               getpgrp() == getpgid(getppid()));
        _exit(10 + i);
    }
    return pid;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    sa.sa_handler = on_usr2;
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0, "sigaction");
    sigset_t both, old;
    sigemptyset(&both);
    sigaddset(&both, SIGUSR1);
    sigaddset(&both, SIGUSR2);
    CHECK(sigprocmask(SIG_BLOCK, &both, &old) == 0, "sigprocmask");

    pid_t kids[4];
    for (int i = 0; i < 3; i++)
        kids[i] = waiting_child(i, &usr1);
    CHECK(kill(0, SIGUSR1) == 0, "kill(0)");
    sigset_t none;
    sigemptyset(&none);
    while (!usr1)
        sigsuspend(&none);
    printf("parent got SIGUSR1 %d time(s)\n", (int)usr1);

    kids[3] = waiting_child(3, &usr2);
    CHECK(killpg(getpgrp(), SIGUSR2) == 0, "killpg");
    while (!usr2)
        sigsuspend(&none);
    printf("parent got SIGUSR2 %d time(s)\n", (int)usr2);

    int sum = 0;
    for (int i = 0; i < 4; i++) {
        int status;
        CHECK(waitpid(kids[i], &status, 0) == kids[i], "waitpid");
        sum += WEXITSTATUS(status);
    }
    printf("children's exit codes add up to %d\n", sum);
    return 0;
}
