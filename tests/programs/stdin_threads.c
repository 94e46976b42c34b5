/* Three threads read lines from the one stdin FILE with fgets, getline
 * and getc, and print which thread got which line: which thread gets a
 * line depends on who takes stdin's lock first. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common.h"

static void *reader(void *arg)
{
    long id = (long)arg;
    int got = 0;
    for (;;) {
        char buf[256];
        char *line = NULL;
        size_t cap = 0;
        int ok;
        if (id == 0) {
            ok = fgets(buf, sizeof buf, stdin) != NULL;
        } else if (id == 1) {
            ok = getline(&line, &cap, stdin) > 0;
            if (ok)
                snprintf(buf, sizeof buf, "%s", line);
        } else {
            size_t n = 0;
            int c;
            flockfile(stdin);
            while ((c = getc(stdin)) != EOF && n + 1 < sizeof buf) {
                buf[n++] = (char)c;
                if (c == '\n')
                    break;
            }
            funlockfile(stdin);
            buf[n] = 0;
            ok = n > 0;
        }
        free(line);
        if (!ok)
            break;
        got++;
        struct timeval tv;
        gettimeofday(&tv, NULL);
        printf("reader %ld got %s", id, buf);
    }
    printf("reader %ld read %d lines\n", id, got);
    return NULL;
}

int main(void)
{
    pthread_t t[3];
    for (long i = 0; i < 3; i++)
        PCHECK(pthread_create(&t[i], NULL, reader, (void *)i));
    for (int i = 0; i < 3; i++)
        PCHECK(pthread_join(t[i], NULL));
    return 0;
}
