/*
 * The process's own memory, reached without a syscall replay can
 * emulate: a child that limits its stack (setrlimit) and recurses until
 * it overflows (the depth it reached, seen by the parent through a shared
 * mapping, depends on the limit), and a value written into a variable
 * through /proc/self/mem.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static volatile int *depth;

static int recurse(void)
{
    volatile char frame[64];
    frame[0] = (char)++*depth;
    if (*depth > 10000000)
        return 3;
    return recurse() + frame[0];
}

int main(void)
{
    depth = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(depth != MAP_FAILED, "mmap");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        struct rlimit r = {256 * 1024, 256 * 1024};
        CHECK(setrlimit(RLIMIT_STACK, &r) == 0, "setrlimit");
        return recurse();
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    printf("child: %s, depth over 100: %d, under 100000: %d\n",
           WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV ? "overflowed" : "?",
           *depth > 100, *depth < 100000);
    printf("depth %d\n", *depth);

    static volatile long value = 1;
    int fd = open("/proc/self/mem", O_RDWR);
    CHECK(fd >= 0, "open /proc/self/mem");
    long two = 2;
    CHECK(pwrite(fd, &two, sizeof two, (off_t)(uintptr_t)&value) == sizeof two, "pwrite");
    printf("value written through /proc/self/mem: %ld\n", value);
    return 0;
}
