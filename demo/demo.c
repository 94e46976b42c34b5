/*
 * rrc demo: a tiny multithreaded bakery.
 *
 * Three baker threads take orders from a queue guarded by a mutex and a
 * condition variable; order sizes come from getrandom(), baking times
 * from the clock; each finished order is announced through a pipe to a
 * courier thread, which delivers in whatever order the notes arrive.
 * Run it twice natively and the story changes; replay a recording of it
 * and the story is told again word for word.
 *
 *   gcc -O2 -g -pthread -Wall -o demo demo.c
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define BAKERS 3
#define ORDERS 8

static const char *baker_names[BAKERS] = {"Ada", "Ben", "Cy"};
static const char *breads[] = {"rye", "sourdough", "brioche", "spelt", "walnut bread"};

struct order {
    int loaves;
    int bread;
    int baker;
    long bake_us;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t have_work = PTHREAD_COND_INITIALIZER;
static struct order orders[ORDERS];
static int next_order, posted, closing;
static int first_baker = -1;
static int pipefd[2];
static int delivered[ORDERS], ndelivered;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long elapsed_us(const struct timespec *a, const struct timespec *b)
{
    return (long)(b->tv_sec - a->tv_sec) * 1000000L + (b->tv_nsec - a->tv_nsec) / 1000;
}

static void *baker(void *arg)
{
    int me = (int)(long)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (next_order == posted && !closing)
            pthread_cond_wait(&have_work, &lock);
        if (next_order == posted) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        int n = next_order++;
        if (first_baker < 0)
            first_baker = me;
        int loaves = orders[n].loaves;
        pthread_mutex_unlock(&lock);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        usleep(300 * (unsigned)loaves); /* baking */
        clock_gettime(CLOCK_MONOTONIC, &t1);

        pthread_mutex_lock(&lock);
        orders[n].baker = me;
        orders[n].bake_us = elapsed_us(&t0, &t1);
        pthread_mutex_unlock(&lock);

        char note[32];
        int len = snprintf(note, sizeof note, "%d\n", n);
        if (write(pipefd[1], note, (size_t)len) != len)
            die("write");
    }
}

static void *courier(void *arg)
{
    (void)arg;
    FILE *in = fdopen(pipefd[0], "r");
    if (!in)
        die("fdopen");
    int n;
    while (fscanf(in, "%d", &n) == 1) {
        pthread_mutex_lock(&lock);
        delivered[ndelivered++] = n;
        pthread_mutex_unlock(&lock);
    }
    fclose(in);
    return NULL;
}

int main(void)
{
    struct timespec opened;
    clock_gettime(CLOCK_REALTIME, &opened);
    struct tm tm;
    gmtime_r(&opened.tv_sec, &tm);

    unsigned char rnd[2 * ORDERS + 2];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        die("getrandom");
    if (pipe(pipefd) != 0)
        die("pipe");

    pthread_t bakers[BAKERS], courier_thread;
    for (long i = 0; i < BAKERS; i++)
        if (pthread_create(&bakers[i], NULL, baker, (void *)i) != 0)
            die("pthread_create");
    if (pthread_create(&courier_thread, NULL, courier, NULL) != 0)
        die("pthread_create");

    for (int i = 0; i < ORDERS; i++) {
        pthread_mutex_lock(&lock);
        orders[i].loaves = 1 + rnd[2 * i] % 6;
        orders[i].bread = rnd[2 * i + 1] % 5;
        posted++;
        pthread_cond_signal(&have_work);
        pthread_mutex_unlock(&lock);
        if (rnd[2 * i] & 1)
            usleep(500);
    }
    pthread_mutex_lock(&lock);
    closing = 1;
    pthread_cond_broadcast(&have_work);
    pthread_mutex_unlock(&lock);
    for (int i = 0; i < BAKERS; i++)
        pthread_join(bakers[i], NULL);
    close(pipefd[1]);
    pthread_join(courier_thread, NULL);

    printf("The bakery opened at %02d:%02d:%02d.%03ld UTC with %d bakers and a courier.\n",
           tm.tm_hour, tm.tm_min, tm.tm_sec, opened.tv_nsec / 1000000, BAKERS);
    printf("%s was first to the counter.\n", baker_names[first_baker]);
    int baked[BAKERS] = {0};
    for (int i = 0; i < ORDERS; i++) {
        struct order *o = &orders[i];
        baked[o->baker]++;
        printf("  order %d: %d loa%s of %s, baked by %s in %.1f ms\n", i + 1, o->loaves,
               o->loaves == 1 ? "f" : "ves", breads[o->bread], baker_names[o->baker],
               o->bake_us / 1000.0);
    }
    printf("The courier delivered orders in this order:");
    for (int i = 0; i < ndelivered; i++)
        printf(" %d", delivered[i] + 1);
    printf("\n");
    for (int i = 0; i < BAKERS; i++)
        printf("%s baked %d order%s.\n", baker_names[i], baked[i], baked[i] == 1 ? "" : "s");
    unsigned lucky = (unsigned)rnd[2 * ORDERS] << 8 | rnd[2 * ORDERS + 1];
    printf("Today's lucky number is %u. The bakery is closed.\n", lucky);
    return 0;
}
