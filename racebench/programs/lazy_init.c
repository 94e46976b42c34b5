/*
 * Double-checked lazy initialisation: a routing table is built on first
 * use. `get_table` checks a plain shared pointer without the lock and only
 * takes the lock when it is NULL; the builder stores the pointer before it
 * has loaded the routes (no barrier, and the store comes first), so a
 * caller on the unlocked fast path can get a table that is still empty.
 *
 * Thread A asks for the table at ~0.6 ms, publishes it and loads the
 * routes from a file; thread B asks at 25 ms. Natively B finds the table
 * complete. When the sleeps return at once, B tends to get the table while
 * it is being filled (no routes yet), or finds no table and takes the lock
 * itself.
 */
#include "racebench.h"

#include <fcntl.h>
#include <sys/stat.h>

#define ROUNDS 6
#define A_ASKS_AT_US 600
#define B_ASKS_AT_US 25000
#define MAX_ROUTES 8

struct routes {
    int count;
    int port[MAX_ROUTES];
};

static struct routes *volatile table;
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static int routes_fd;

static int b_route_count[ROUNDS];
static int b_first_port[ROUNDS];

static struct routes *get_table(void)
{
    struct routes *t = table;
    if (t != NULL)
        return t;
    PCHECK(pthread_mutex_lock(&table_lock));
    t = table;
    if (t == NULL) {
        t = calloc(1, sizeof *t);
        CHECK(t != NULL, "calloc");
        table = t; /* the bug: visible to the fast path before it is filled */
        COMPILER_BARRIER();
        struct stat st;
        CHECK(fstat(routes_fd, &st) == 0, "fstat routes");
        char text[128] = {0};
        size_t len = (size_t)st.st_size < sizeof text - 1 ? (size_t)st.st_size : sizeof text - 1;
        CHECK(pread(routes_fd, text, len, 0) == (ssize_t)len, "pread routes");
        int n = 0, used = 0, port;
        const char *p = text;
        while (n < MAX_ROUTES && sscanf(p, "%d%n", &port, &used) == 1) {
            t->port[n++] = port;
            p += used;
        }
        t->count = n;
    }
    PCHECK(pthread_mutex_unlock(&table_lock));
    return t;
}

static void *thread_a(void *arg)
{
    (void)arg;
    sleep_until_round_us(A_ASKS_AT_US);
    struct routes *t = get_table();
    log_line("A: routing with %d routes\n", t->count);
    return NULL;
}

static void *thread_b(void *arg)
{
    (void)arg;
    sleep_until_round_us(B_ASKS_AT_US);
    struct routes *t = get_table();
    int count = t->count;
    b_route_count[round_no] = count;
    b_first_port[round_no] = count > 0 ? t->port[0] : -1;
    log_line("B: routing with %d routes\n", count);
    return NULL;
}

int main(void)
{
    char path[] = "/tmp/racebench-routes-XXXXXX";
    routes_fd = mkstemp(path);
    CHECK(routes_fd >= 0, "mkstemp");
    CHECK(unlink(path) == 0, "unlink");
    const char *text = "8001 8002 8003 8004 8005\n";
    CHECK(write(routes_fd, text, strlen(text)) == (ssize_t)strlen(text), "write routes");
    log_open();

    void *(*const workers[])(void *) = {thread_a, thread_b};
    for (int r = 0; r < ROUNDS; r++) {
        table = NULL;
        COMPILER_BARRIER();
        run_round(r, workers, 2);
        free(table);
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++)
        printf("race lazy_init round %02d: B got a table with %d routes (first port %d)\n", r,
               b_route_count[r], b_first_port[r]);
    return 0;
}
