/*
 * Built three times by tests/build.rs: divergent_v1 (-DVARIANT=1),
 * divergent_v2 (-DVARIANT=2: writes different bytes) and divergent_v3
 * (-DVARIANT=3: makes extra system calls before the same output) and
 * divergent_v4 (-DVARIANT=4: sends other bytes through a pipe, a write
 * the fast path buffers, before the same output) and divergent_v5
 * (-DVARIANT=5: one byte of a 200-byte write differs, data the trace keeps
 * as a digest) and divergent_v6 (-DVARIANT=6: takes a mutex after its
 * last recorded sync operation, with its output still to flush). The
 * test records v1, then overwrites the recorded executable with v2 or v3:
 * replay must report a divergence rather than "succeed".
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
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
    /* A write to a pipe: made untrapped and logged in-process when the
     * fast path is on, trapped when it is off; replay checks it either way. */
    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    unsigned char sent[8];
    memcpy(sent, rnd, sizeof sent);
#if VARIANT == 4
    sent[3] ^= 0x5a;
#endif
    CHECK(write(p[1], sent, sizeof sent) == (ssize_t)sizeof sent, "write to a pipe");
    CHECK(read(p[0], sent, sizeof sent) == (ssize_t)sizeof sent, "read it back");
    /* More than 64 bytes: the trace keeps their length and SHA-256. */
    unsigned char block[200];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (unsigned char)(rnd[i % sizeof rnd] + i);
#if VARIANT == 5
    block[150] ^= 0x01;
#endif
    CHECK(write(p[1], block, sizeof block) == (ssize_t)sizeof block, "write a block to a pipe");
    CHECK(read(p[0], block, sizeof block) == (ssize_t)sizeof block, "read the block back");
#if VARIANT == 2
    printf("this is variant two, and it says something else entirely: ");
#else
    printf("variant one: ");
#endif
    print_hex(stdout, rnd, sizeof rnd);
    printf("\n");
#if VARIANT == 6
    static pthread_mutex_t late = PTHREAD_MUTEX_INITIALIZER;
    PCHECK(pthread_mutex_lock(&late));
    PCHECK(pthread_mutex_unlock(&late));
#endif
    return 0;
}
