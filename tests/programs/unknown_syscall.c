/*
 * Calls a syscall rrc does not model, twice: kcmp(2) comparing this
 * process's descriptor 1 with itself (harmless: it only compares kernel
 * objects). The recording warns once, the trace lists it, and replay
 * stops at it with a divergence.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif

int main(void)
{
    pid_t self = getpid();
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_kcmp, self, self, KCMP_FILE, 1, 1);
        printf("kcmp call %d: %ld (%s)\n", i + 1, r, r < 0 ? strerror(errno) : "ok");
        fflush(stdout);
    }
    printf("unknown_syscall: done\n");
    return 0;
}
