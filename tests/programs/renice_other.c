/*
 * Acts on a process outside the recording (its pid is the argument):
 * sets its nice value to 7 and pins it to CPU 0. Then makes the same
 * calls on itself (pid 0 and its own pid), which replay still makes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: renice_other PID");
    pid_t other = (pid_t)atoi(argv[1]);
    int rc = setpriority(PRIO_PROCESS, (id_t)other, 7);
    printf("setpriority(%d, 7) = %d\n", (int)other, rc);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    rc = sched_setaffinity(other, sizeof one, &one);
    printf("sched_setaffinity(%d, cpu 0) = %d\n", (int)other, rc);
    rc = setpriority(PRIO_PROCESS, 0, 1);
    printf("setpriority(self, 1) = %d\n", rc);
    rc = setpriority(PRIO_PROCESS, (id_t)getpid(), 2);
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    printf("setpriority(own pid, 2) = %d, now %d\n", rc, prio);
    rc = sched_setaffinity(0, sizeof one, &one);
    printf("sched_setaffinity(self, cpu 0) = %d\n", rc);
    return 0;
}
