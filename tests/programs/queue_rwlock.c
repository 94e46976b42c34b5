/*
 * A reader thread reads lines from stdin and feeds three worker threads
 * through a condition-variable-protected queue. Workers look each line
 * up in a table guarded by a pthread_rwlock while a writer thread keeps
 * updating the table under the write lock. What each line maps to, and
 * which worker handled it, depends on the thread interleaving.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define NWORKERS 3
#define QCAP 4
#define MAXITEMS 4096
#define LINELEN 128
#define TABLE 16

struct result {
    int worker;
    long value;
    int version;
    char line[LINELEN];
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER;
static pthread_cond_t not_full = PTHREAD_COND_INITIALIZER;
static int queue[QCAP], qhead, qcount, input_done;
static struct result results[MAXITEMS];
static int nitems;

static pthread_rwlock_t tlock = PTHREAD_RWLOCK_INITIALIZER;
static long table[TABLE];
static int version, stop_writer;

static void *reader(void *arg)
{
    (void)arg;
    char line[LINELEN];
    while (fgets(line, sizeof line, stdin) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        PCHECK(pthread_mutex_lock(&qlock));
        if (nitems == MAXITEMS) {
            PCHECK(pthread_mutex_unlock(&qlock));
            break;
        }
        while (qcount == QCAP)
            PCHECK(pthread_cond_wait(&not_full, &qlock));
        int idx = nitems++;
        snprintf(results[idx].line, LINELEN, "%s", line);
        queue[(qhead + qcount) % QCAP] = idx;
        qcount++;
        PCHECK(pthread_cond_signal(&not_empty));
        PCHECK(pthread_mutex_unlock(&qlock));
    }
    PCHECK(pthread_mutex_lock(&qlock));
    input_done = 1;
    PCHECK(pthread_cond_broadcast(&not_empty));
    PCHECK(pthread_mutex_unlock(&qlock));
    return NULL;
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    for (;;) {
        PCHECK(pthread_mutex_lock(&qlock));
        while (qcount == 0 && !input_done)
            PCHECK(pthread_cond_wait(&not_empty, &qlock));
        if (qcount == 0) {
            PCHECK(pthread_mutex_unlock(&qlock));
            return NULL;
        }
        int idx = queue[qhead];
        qhead = (qhead + 1) % QCAP;
        qcount--;
        char line[LINELEN];
        memcpy(line, results[idx].line, LINELEN);
        PCHECK(pthread_cond_signal(&not_full));
        PCHECK(pthread_mutex_unlock(&qlock));

        uint64_t h = fnv1a(line, strlen(line));
        PCHECK(pthread_rwlock_rdlock(&tlock));
        long value = table[h % TABLE];
        int seen = version;
        PCHECK(pthread_rwlock_unlock(&tlock));

        PCHECK(pthread_mutex_lock(&qlock));
        results[idx].worker = id;
        results[idx].value = value;
        results[idx].version = seen;
        PCHECK(pthread_mutex_unlock(&qlock));
    }
}

static void *writer(void *arg)
{
    (void)arg;
    for (int round = 1;; round++) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        PCHECK(pthread_rwlock_wrlock(&tlock));
        if (stop_writer) {
            PCHECK(pthread_rwlock_unlock(&tlock));
            return NULL;
        }
        table[round % TABLE] += round * 7 + (now.tv_nsec & 0xff);
        version++;
        PCHECK(pthread_rwlock_unlock(&tlock));
        usleep(300);
    }
}

int main(void)
{
    for (int i = 0; i < TABLE; i++)
        table[i] = i * 100;

    pthread_t rd, wr, wk[NWORKERS];
    PCHECK(pthread_create(&wr, NULL, writer, NULL));
    for (long i = 0; i < NWORKERS; i++)
        PCHECK(pthread_create(&wk[i], NULL, worker, (void *)i));
    PCHECK(pthread_create(&rd, NULL, reader, NULL));

    PCHECK(pthread_join(rd, NULL));
    for (int i = 0; i < NWORKERS; i++)
        PCHECK(pthread_join(wk[i], NULL));
    PCHECK(pthread_rwlock_wrlock(&tlock));
    stop_writer = 1;
    int final_version = version;
    PCHECK(pthread_rwlock_unlock(&tlock));
    PCHECK(pthread_join(wr, NULL));

    int per_worker[NWORKERS] = {0};
    for (int i = 0; i < nitems; i++) {
        struct result *r = &results[i];
        per_worker[r->worker]++;
        printf("item %3d %-12s worker %d value %6ld (table version %d)\n", i,
               r->line, r->worker, r->value, r->version);
    }
    printf("items: %d, table versions: %d\n", nitems, final_version);
    for (int i = 0; i < NWORKERS; i++)
        printf("worker %d handled %d items\n", i, per_worker[i]);
    fprintf(stderr, "queue_rwlock: %d items, %d table versions\n", nitems,
            final_version);
    return 0;
}
