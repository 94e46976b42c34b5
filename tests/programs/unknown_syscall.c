/*
 * Calls a syscall rrc does not model, twice: sched_get_priority_max(2)
 * for SCHED_FIFO (harmless: it only reads a constant of the kernel). The
 * recording warns once, the trace lists it, and replay stops at it with a
 * divergence.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

int main(void)
{
    for (int i = 0; i < 2; i++) {
        long r = syscall(SYS_sched_get_priority_max, SCHED_FIFO);
        printf("sched_get_priority_max call %d: %ld (%s)\n", i + 1, r,
               r < 0 ? strerror(errno) : "ok");
        fflush(stdout);
    }
    printf("unknown_syscall: done\n");
    return 0;
}
