/* Four threads print 200 lines each through one stdio stream, reading the
 * clock between lines, so the interleaving (and, with full buffering,
 * what each write(2) carries) changes from run to run.
 *   stdio_threads MODE [FILE]
 * MODE: line, full or none (setvbuf); with FILE, the lines go there
 * through fopen, and the program then prints the file's hash. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common.h"

#define THREADS 4
#define LINES 200

static FILE *out;

static void *worker(void *arg)
{
    long id = (long)arg;
    for (int i = 0; i < LINES; i++) {
        struct timeval tv;
        gettimeofday(&tv, NULL);
        switch (i % 4) {
        case 0:
            fprintf(out, "thread %ld line %d usec %06ld\n", id, i, (long)tv.tv_usec);
            break;
        case 1:
            fputs(id % 2 ? "odd thread says hello\n" : "even thread says hello\n", out);
            break;
        case 2:
            fwrite("fwrite line\n", 1, 12, out);
            break;
        default:
            flockfile(out);
            fputc('0' + (int)id, out);
            putc(':', out);
            fputs(" two calls under flockfile\n", out);
            funlockfile(out);
        }
        if (i % 50 == 49)
            fflush(out);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "line";
    out = stdout;
    if (argc > 2) {
        out = fopen(argv[2], "w");
        CHECK(out != NULL, "fopen");
    }
    int how = strcmp(mode, "full") == 0 ? _IOFBF : strcmp(mode, "none") == 0 ? _IONBF : _IOLBF;
    setvbuf(out, NULL, how, 0);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < THREADS; i++)
        PCHECK(pthread_join(t[i], NULL));
    if (argc > 2) {
        fclose(out);
        FILE *in = fopen(argv[2], "r");
        CHECK(in != NULL, "reopen");
        char buf[1 << 16];
        size_t n = fread(buf, 1, sizeof buf, in);
        printf("stdio_threads: %zu bytes, hash %016llx\n", n,
               (unsigned long long)fnv1a(buf, n));
        fclose(in);
    }
    return 0;
}
