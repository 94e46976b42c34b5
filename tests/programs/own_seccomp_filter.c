/*
 * A program that installs a seccomp filter of its own (with seccomp(2),
 * or prctl(PR_SET_SECCOMP) when given "prctl") which answers read(2)
 * with SIGSYS (a handler counts them), then reads from a pipe
 * through libc: the filter, not the read, decides what happens, both
 * when recorded (where rrc's fast path would otherwise make the read
 * from its own call site and log a result) and in replay.
 */
#define _GNU_SOURCE
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

static volatile int sigsys_count;

static void on_sigsys(int sig)
{
    (void)sig;
    sigsys_count++;
}

int main(int argc, char **argv)
{
    int by_prctl = argc > 1 && strcmp(argv[1], "prctl") == 0;
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    CHECK(write(p[1], "abc", 3) == 3, "write");
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_read, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = filter};
    signal(SIGSYS, on_sigsys);
    CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0, "no_new_privs");
    if (by_prctl)
        CHECK(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0, "prctl(PR_SET_SECCOMP)");
    else
        CHECK(syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0, "seccomp");
    char c = 0;
    for (int i = 0; i < 20; i++)
        (void)read(p[0], &c, 1);
    printf("SIGSYS %d times, read nothing: %d\n", sigsys_count, c == 0);
    return 0;
}
