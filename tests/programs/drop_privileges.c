/*
 * Gives up root as its real user ID (keeping it as the effective one),
 * then runs itself again: with real and effective IDs apart, the kernel
 * marks that exec secure, and the dynamic loader then makes other syscalls
 * than for plain root. Replay must change the IDs too, or the new program
 * diverges at its first steps.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
    uid_t r, e, s;
    if (argc > 1) {
        CHECK(getresuid(&r, &e, &s) == 0, "getresuid");
        printf("again: real %d effective %d, secure exec %lu\n", (int)r, (int)e,
               getauxval(AT_SECURE));
        return 0;
    }
    if (setgroups(0, NULL) != 0 || setresuid(65534, 0, 0) != 0) {
        printf("kept uid %d: %s\n", (int)getuid(), strerror(errno));
        return 0;
    }
    CHECK(getresuid(&r, &e, &s) == 0, "getresuid");
    printf("now real %d effective %d\n", (int)r, (int)e);
    fflush(stdout);
    execl("/proc/self/exe", argv[0], "again", (char *)NULL);
    printf("exec: %s\n", strerror(errno));
    return 1;
}
