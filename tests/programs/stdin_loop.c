/*
 * read() in a loop on stdin with a 7-byte buffer; prints statistics of
 * what arrived and how long it took.
 */
#define _GNU_SOURCE
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(void)
{
    struct timespec t0, t1;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t0) == 0, "clock_gettime");
    char buf[7];
    uint64_t h = 0xcbf29ce484222325ULL;
    size_t total = 0, reads = 0, short_reads = 0, lines = 0, longest = 0, cur = 0;
    for (;;) {
        ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
        CHECK(n >= 0, "read stdin");
        if (n == 0)
            break;
        reads++;
        short_reads += n < (ssize_t)sizeof buf;
        for (ssize_t i = 0; i < n; i++) {
            h ^= (unsigned char)buf[i];
            h *= 0x100000001b3ULL;
            if (buf[i] == '\n') {
                lines++;
                if (cur > longest)
                    longest = cur;
                cur = 0;
            } else {
                cur++;
            }
        }
        total += (size_t)n;
    }
    CHECK(clock_gettime(CLOCK_MONOTONIC, &t1) == 0, "clock_gettime");
    long ns = (long)(t1.tv_sec - t0.tv_sec) * 1000000000L + (t1.tv_nsec - t0.tv_nsec);
    printf("bytes %zu in %zu reads (%zu short), %zu lines, longest %zu\n", total,
           reads, short_reads, lines, longest);
    printf("fnv1a %016llx\n", (unsigned long long)h);
    printf("elapsed %ld ns\n", ns);
    fprintf(stderr, "stdin_loop: %zu bytes\n", total);
    return 0;
}
