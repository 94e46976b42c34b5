/*
 * Calls a syscall rrc does not model, twice: sched_rr_get_interval(2)
 * for itself (harmless: it only reads the scheduler's time slice). The
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
        struct timespec slice;
        long r = syscall(SYS_sched_rr_get_interval, 0, &slice);
        printf("sched_rr_get_interval call %d: %ld (%s)\n", i + 1, r,
               r < 0 ? strerror(errno) : "ok");
        fflush(stdout);
    }
    printf("unknown_syscall: done\n");
    return 0;
}
