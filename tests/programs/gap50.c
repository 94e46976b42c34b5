/* A known 50 ms gap between two syscalls: replay with intervals must take
 * at least that long, since emulated calls would otherwise return at once. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

int main(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec gap = {0, 50 * 1000 * 1000};
    nanosleep(&gap, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("slept %ld ms\n", ms);
    return 0;
}
