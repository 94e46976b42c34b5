/*
 * Publish before initialise: a loader thread allocates a new configuration,
 * publishes the pointer in a plain shared variable (no barrier, no lock)
 * and only then fills it in from the configuration file; a worker picks up
 * whatever configuration is published and uses its fields.
 *
 * The loader publishes the new configuration at once, then waits for the
 * file (a sleep to 0.6 ms), reads it (fstat, pread), notes the time
 * (clock_gettime) and fills the fields; the worker looks at 25 ms. Natively the worker sees a complete
 * configuration. When the sleeps return at once, the worker tends to find
 * nothing published yet, or a configuration whose fields are still zero.
 */
#include "racebench.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#define ROUNDS 6
#define LOAD_AT_US 600
#define USE_AT_US 25000

struct config {
    int port;
    int workers;
    int generation;
    struct timespec loaded_at;
};

static struct config *volatile published;
static int config_fd;

static int saw_config[ROUNDS];
static struct config seen[ROUNDS];

static void *loader(void *arg)
{
    (void)arg;
    struct config *cfg = calloc(1, sizeof *cfg);
    CHECK(cfg != NULL, "calloc");
    published = cfg; /* the bug: published before it is filled in */
    COMPILER_BARRIER();
    sleep_until_round_us(LOAD_AT_US);
    struct stat st;
    CHECK(fstat(config_fd, &st) == 0, "fstat config");
    char text[64] = {0};
    size_t len = (size_t)st.st_size < sizeof text - 1 ? (size_t)st.st_size : sizeof text - 1;
    CHECK(pread(config_fd, text, len, 0) == (ssize_t)len, "pread config");
    int port = 0, workers = 0;
    CHECK(sscanf(text, "port=%d workers=%d", &port, &workers) == 2, "parse config");
    struct timespec now;
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0, "clock_gettime");
    cfg->loaded_at = now;
    cfg->port = port;
    cfg->workers = workers;
    cfg->generation = round_no + 1;
    log_line("loader: configuration %d loaded\n", round_no + 1);
    return NULL;
}

static void *worker(void *arg)
{
    (void)arg;
    sleep_until_round_us(USE_AT_US);
    struct config *cfg = published;
    if (cfg == NULL) {
        log_line("worker: no configuration\n");
        return NULL;
    }
    struct config copy = {cfg->port, cfg->workers, cfg->generation, cfg->loaded_at};
    saw_config[round_no] = 1;
    seen[round_no] = copy;
    log_line("worker: listening on port %d with %d workers\n", copy.port, copy.workers);
    return NULL;
}

int main(void)
{
    char path[] = "/tmp/racebench-config-XXXXXX";
    config_fd = mkstemp(path);
    CHECK(config_fd >= 0, "mkstemp");
    CHECK(unlink(path) == 0, "unlink");
    const char *text = "port=8080 workers=4\n";
    CHECK(write(config_fd, text, strlen(text)) == (ssize_t)strlen(text), "write config");
    log_open();

    void *(*const workers[])(void *) = {loader, worker};
    for (int r = 0; r < ROUNDS; r++) {
        published = NULL;
        COMPILER_BARRIER();
        run_round(r, workers, 2);
        free(published);
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++) {
        if (!saw_config[r])
            printf("race publish_init round %02d: worker saw no configuration\n", r);
        else
            printf("race publish_init round %02d: worker saw port=%d workers=%d generation=%d\n", r,
                   seen[r].port, seen[r].workers, seen[r].generation);
    }
    return 0;
}
