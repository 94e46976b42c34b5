/*
 * Mappings of a file the program wrote itself and removes before it ends
 * (replay cannot open it): random bytes from getrandom written to a file,
 * mapped shared read-only, private writable (and changed), and shared
 * writable (changed, then read back with pread). Replay must map the
 * bytes the recording saw.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include "common.h"

#define SIZE 10000

int main(void)
{
    static unsigned char data[SIZE];
    CHECK(getrandom(data, SIZE, 0) == SIZE, "getrandom");
    int fd = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0, "open mapped.bin");
    CHECK(write(fd, data, SIZE) == SIZE, "write");

    const unsigned char *ro = mmap(NULL, SIZE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(ro != MAP_FAILED, "mmap shared read-only");
    printf("shared read-only: %016llx\n", (unsigned long long)fnv1a(ro, SIZE));

    unsigned char *priv = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 4096);
    CHECK(priv != MAP_FAILED, "mmap private");
    priv[0] ^= 0xff;
    printf("private from 4096: %016llx\n", (unsigned long long)fnv1a(priv, SIZE - 4096));

    unsigned char *rw = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(rw != MAP_FAILED, "mmap shared writable");
    rw[1] = 'x';
    CHECK(msync(rw, SIZE, MS_SYNC) == 0, "msync");
    unsigned char back[2];
    CHECK(pread(fd, back, 2, 0) == 2, "pread");
    printf("shared writable: %016llx, file byte 1 now %c\n",
           (unsigned long long)fnv1a(rw, SIZE), back[1]);

    close(fd);
    CHECK(unlink("mapped.bin") == 0, "unlink");
    return 0;
}
