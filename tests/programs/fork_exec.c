/*
 * Processes: fork + execve of this program itself (as a child that
 * prints its pid and parent and exits 7), fork + execvp of echo found
 * through PATH, a fork that just _exits with 42, and popen of `echo`.
 * The parent prints each child's pid and wait status: pids differ from
 * run to run, replay must reproduce them.
 *
 *   fork_exec            the parent
 *   fork_exec child ARG  the re-executed child
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void describe(const char *what, pid_t pid, int status)
{
    if (WIFEXITED(status))
        printf("parent: %s (pid %d) exited with %d\n", what, (int)pid, WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("parent: %s (pid %d) killed by signal %d\n", what, (int)pid, WTERMSIG(status));
    else
        printf("parent: %s (pid %d) status 0x%x\n", what, (int)pid, status);
    fflush(stdout);
}

static int wait_for(pid_t pid)
{
    int status;
    pid_t got;
    do
        got = waitpid(pid, &status, 0);
    while (got < 0 && errno == EINTR);
    CHECK(got == pid, "waitpid");
    return status;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "child") == 0) {
        printf("child: pid %d, parent %d, argument %s\n", (int)getpid(), (int)getppid(),
               argv[2]);
        fflush(stdout);
        return 7;
    }

    pid_t self = getpid();
    printf("parent: pid %d\n", (int)self);
    fflush(stdout);

    /* 1. fork + execve of this program. */
    pid_t pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        char *args[] = {argv[0], "child", "re-executed", NULL};
        execv("/proc/self/exe", args);
        perror("execv");
        _exit(127);
    }
    printf("parent: forked %d to re-execute itself\n", (int)pid);
    fflush(stdout);
    describe("re-executed child", pid, wait_for(pid));

    /* 2. fork + execvp of echo, found through PATH. */
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0) {
        execlp("echo", "echo", "echo: hello from a child found in PATH", (char *)NULL);
        perror("execlp echo");
        _exit(127);
    }
    printf("parent: forked %d to run echo\n", (int)pid);
    fflush(stdout);
    describe("echo", pid, wait_for(pid));

    /* 3. A child that only _exits. */
    pid = fork();
    CHECK(pid >= 0, "fork");
    if (pid == 0)
        _exit(42);
    describe("_exit child", pid, wait_for(pid));

    /* 4. popen of echo. */
    FILE *p = popen("echo popen says hi", "r");
    CHECK(p != NULL, "popen");
    char line[128];
    CHECK(fgets(line, sizeof line, p) != NULL, "fgets from popen");
    int status = pclose(p);
    CHECK(status != -1, "pclose");
    printf("parent: popen read: %s", line);
    describe("popen child", 0, status);

    printf("parent: pid %d done\n", (int)getpid());
    return 0;
}
