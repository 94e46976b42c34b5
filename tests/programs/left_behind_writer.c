/* The parent returns while a child it forked writes to stdout without a
 * pause: the recording ends by killing the child, most likely while the
 * kernel is copying one of its writes out, and those bytes are out even
 * though the call never returns. How many lines the child gets out
 * differs from run to run. */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#include "common.h"

int main(void)
{
    int ready[2];
    CHECK(pipe(ready) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        char line[64];
        for (long i = 0;; i++) {
            int n = snprintf(line, sizeof line, "child line %ld\n", i);
            if (write(1, line, n) != n)
                return 1;
            if (i == 50) {
                char c = 'x';
                CHECK(write(ready[1], &c, 1) == 1, "write ready");
            }
        }
    }
    char c;
    CHECK(read(ready[0], &c, 1) == 1, "read ready");
    printf("parent returns\n");
    return 0;
}
