/*
 * Prints a line, then ticks every 100 ms for about two seconds. The test
 * kills the recorder with SIGKILL part way through.
 */
#define _GNU_SOURCE
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(void)
{
    printf("sleeper: started\n");
    fflush(stdout);
    for (int i = 0; i < 20; i++) {
        struct timespec now, pause = {0, 100 * 1000 * 1000};
        CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0, "clock_gettime");
        nanosleep(&pause, NULL);
        printf("sleeper: tick %d at %lld.%09ld\n", i, (long long)now.tv_sec, now.tv_nsec);
        fflush(stdout);
    }
    printf("sleeper: done\n");
    return 0;
}
