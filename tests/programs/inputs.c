/*
 * Single thread reading every kind of nondeterministic input a simple
 * program meets: stdin, /dev/urandom, getrandom(), clocks (vDSO calls),
 * getpid()/gettid(), the environment. Prints each, and values derived
 * from them, so two native runs never print the same thing.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/random.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
    /* All of stdin, however it arrives. */
    size_t cap = 4096, len = 0;
    char *in = malloc(cap);
    CHECK(in != NULL, "malloc");
    for (;;) {
        if (len == cap) {
            cap *= 2;
            in = realloc(in, cap);
            CHECK(in != NULL, "realloc");
        }
        ssize_t n = read(STDIN_FILENO, in + len, cap - len);
        CHECK(n >= 0, "read stdin");
        if (n == 0)
            break;
        len += (size_t)n;
    }
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += in[i] == '\n';
    printf("stdin: %zu bytes, %zu lines, fnv1a %016llx\n", len, lines,
           (unsigned long long)fnv1a(in, len));

    unsigned char urnd[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open /dev/urandom");
    CHECK(read(fd, urnd, sizeof urnd) == (ssize_t)sizeof urnd, "read /dev/urandom");
    CHECK(close(fd) == 0, "close");
    printf("urandom: ");
    print_hex(stdout, urnd, sizeof urnd);
    printf("\n");

    unsigned char grnd[16];
    CHECK(getrandom(grnd, sizeof grnd, 0) == (ssize_t)sizeof grnd, "getrandom");
    printf("getrandom: ");
    print_hex(stdout, grnd, sizeof grnd);
    printf("\n");

    struct timespec mono, real;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &mono) == 0, "clock_gettime");
    CHECK(clock_gettime(CLOCK_REALTIME, &real) == 0, "clock_gettime");
    struct timeval tv;
    CHECK(gettimeofday(&tv, NULL) == 0, "gettimeofday");
    time_t now = time(NULL);
    printf("monotonic: %lld.%09ld\n", (long long)mono.tv_sec, mono.tv_nsec);
    printf("realtime: %lld.%09ld\n", (long long)real.tv_sec, real.tv_nsec);
    printf("gettimeofday: %lld.%06ld\n", (long long)tv.tv_sec, (long)tv.tv_usec);
    printf("time: %lld\n", (long long)now);

    pid_t pid = getpid();
    pid_t tid = gettid();
    printf("pid: %d tid: %d\n", (int)pid, (int)tid);

    const char *token = getenv("RRC_TEST_TOKEN");
    printf("env RRC_TEST_TOKEN: %s\n", token ? token : "(unset)");
    printf("argc: %d", argc);
    for (int i = 1; i < argc; i++)
        printf(" [%s]", argv[i]);
    printf("\n");

    /* Derived values: anything computed from the inputs must replay too. */
    int dice = urnd[0] % 6 + 1;
    uint64_t mix = fnv1a(urnd, sizeof urnd) ^ fnv1a(grnd, sizeof grnd) ^
                   (uint64_t)mono.tv_nsec ^ ((uint64_t)real.tv_nsec << 20) ^
                   (uint64_t)pid;
    printf("dice: %d\n", dice);
    printf("mix: %016llx\n", (unsigned long long)mix);
    printf("clock order ok: %s\n",
           real.tv_sec <= tv.tv_sec + 1 && tv.tv_sec <= now + 1 ? "yes" : "no");

    fprintf(stderr, "inputs: done, dice %d, mix low byte %02x\n", dice,
            (unsigned)(mix & 0xff));
    free(in);
    return 0;
}
