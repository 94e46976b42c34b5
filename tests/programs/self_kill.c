/*
 * Processes that end themselves with SIGKILL, a signal no handler sees:
 * raise(SIGKILL) in a child, kill(getpid(), SIGKILL) in another, and a
 * worker thread of a third child that raises it while the child's main
 * thread is blocked in a read. The parent prints each child's status;
 * with the argument "self" the parent then kills itself the same way
 * (exit status 137 for the recorder and the replay).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void *raise_kill(void *arg)
{
    (void)arg;
    usleep(3000);
    raise(SIGKILL);
    return NULL;
}

static void report(const char *what, pid_t pid)
{
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    printf("%s: pid %d %s %d\n", what, (int)pid, WIFSIGNALED(status) ? "killed by" : "exited",
           WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    fflush(stdout);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        printf("child 1 pid %d raises SIGKILL\n", (int)getpid());
        raise(SIGKILL);
        _exit(1);
    }
    report("raise", pid);

    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        printf("child 2 pid %d kills itself\n", (int)getpid());
        kill(getpid(), SIGKILL);
        _exit(2);
    }
    report("kill", pid);

    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        int p[2];
        CHECK(pipe(p) == 0, "pipe");
        pthread_t t;
        PCHECK(pthread_create(&t, NULL, raise_kill, NULL));
        char c;
        ssize_t n = read(p[0], &c, 1); /* never returns */
        printf("child 3 read returned %zd\n", n);
        _exit(3);
    }
    report("thread raise", pid);

    if (argc > 1 && strcmp(argv[1], "self") == 0) {
        printf("parent pid %d kills itself\n", (int)getpid());
        raise(SIGKILL);
    }
    return 0;
}
