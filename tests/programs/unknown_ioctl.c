/*
 * ioctls on a socket. `known`: SIOCGIFCONF and SIOCGIFINDEX, which rrc
 * models (what the kernel writes is recorded), print the interfaces and
 * replay identically. `unknown`: an old-style request rrc does not model
 * (0x8938, SIOCGIFCOUNT), twice: the recording warns once, the trace lists
 * it, and replay stops at it with a divergence naming it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

#define UNKNOWN_REQUEST 0x8938

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: unknown_ioctl known|unknown");
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    CHECK(s >= 0, "socket");
    if (strcmp(argv[1], "known") == 0) {
        struct ifreq reqs[16];
        struct ifconf ifc = {.ifc_len = sizeof reqs, .ifc_req = reqs};
        CHECK(ioctl(s, SIOCGIFCONF, &ifc) == 0, "SIOCGIFCONF");
        int n = ifc.ifc_len / (int)sizeof(struct ifreq);
        printf("interfaces: %d\n", n);
        for (int i = 0; i < n; i++) {
            struct ifreq r = reqs[i];
            CHECK(ioctl(s, SIOCGIFINDEX, &r) == 0, "SIOCGIFINDEX");
            printf("%s index %d\n", reqs[i].ifr_name, r.ifr_ifindex);
        }
    } else {
        for (int i = 0; i < 2; i++) {
            int count = -1;
            long r = ioctl(s, UNKNOWN_REQUEST, &count);
            printf("ioctl call %d: %ld (%s)\n", i + 1, r, r < 0 ? strerror(errno) : "ok");
            fflush(stdout);
        }
    }
    printf("unknown_ioctl: done\n");
    return 0;
}
