/*
 * Built three times by tests/build.rs: divergent_v1 (-DVARIANT=1),
 * divergent_v2 (-DVARIANT=2: writes different bytes) and divergent_v3
 * (-DVARIANT=3: makes extra system calls before the same output). The
 * test records v1, then overwrites the recorded executable with v2 or v3:
 * replay must report a divergence rather than "succeed".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"

#ifndef VARIANT
#define VARIANT 1
#endif

int main(void)
{
    unsigned char rnd[8];
    CHECK(getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd, "getrandom");
#if VARIANT == 3
    char buf[256];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open /proc/self/status");
    CHECK(read(fd, buf, sizeof buf) > 0, "read");
    close(fd);
#endif
#if VARIANT == 2
    printf("this is variant two, and it says something else entirely: ");
#else
    printf("variant one: ");
#endif
    print_hex(stdout, rnd, sizeof rnd);
    printf("\n");
    return 0;
}
