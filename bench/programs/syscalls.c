/* One thread making N system calls of one kind, for rrc-bench's
 * `syscalls` benchmark. rrc-bench times the whole process from outside
 * (the program's own clock reads are replayed from the trace under
 * rrc-replay) and subtracts a run of the same program with KIND "none".
 *
 * Usage: syscalls none|getpid|clock_gettime|read|print N
 * print: a 32-byte line written to stdout, one write(2) each (what
 * Rust's println! or a line-buffered stream makes).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s none|getpid|clock_gettime|read|print N\n", argv[0]);
        return 2;
    }
    const char *kind = argv[1];
    long calls = atol(argv[2]);
    /* Keeps the compiler from dropping the calls' results. */
    volatile long sink = 0;

    if (strcmp(kind, "none") == 0) {
        /* Start-up and exit only: the baseline. */
    } else if (strcmp(kind, "getpid") == 0) {
        for (long i = 0; i < calls; i++)
            sink += syscall(SYS_getpid);
    } else if (strcmp(kind, "clock_gettime") == 0) {
        struct timespec now;
        for (long i = 0; i < calls; i++) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            sink += now.tv_nsec;
        }
    } else if (strcmp(kind, "read") == 0) {
        int fd = open("/dev/zero", O_RDONLY);
        if (fd < 0) {
            perror("open /dev/zero");
            return 1;
        }
        char buffer[64];
        for (long i = 0; i < calls; i++) {
            if (read(fd, buffer, sizeof buffer) != (ssize_t)sizeof buffer) {
                perror("read /dev/zero");
                return 1;
            }
            sink += buffer[i % sizeof buffer];
        }
        close(fd);
    } else if (strcmp(kind, "print") == 0) {
        static const char line[] = "a line of the program's output\n";
        for (long i = 0; i < calls; i++) {
            if (write(1, line, sizeof line - 1) != (ssize_t)(sizeof line - 1)) {
                perror("write stdout");
                return 1;
            }
        }
    } else {
        fprintf(stderr, "unknown kind %s\n", kind);
        return 2;
    }
    (void)sink;
    return 0;
}
