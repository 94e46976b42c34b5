/*
 * A stop flag read without synchronisation: a worker polls for work (one
 * sleep per iteration, on a fixed 24 ms schedule) and counts iterations
 * until a plain `int stop` is set; a controller reads a shutdown request
 * (a pipe round trip) and sets the flag at 36 ms, half way between two of
 * the worker's checks.
 *
 * Natively the worker checks at 0 and 24 ms (stop still clear) and at
 * 48 ms (set), so it counts 2 iterations nearly every time. When the
 * sleeps return at once, the worker's iterations and the controller's
 * store interleave arbitrarily and the count comes out different.
 */
#include "racebench.h"

#define ROUNDS 5
#define PERIOD_US 24000
#define STOP_AT_US 36000
#define MAX_ITERATIONS 50

static volatile int stop;
static int control_pipe[2];
static int iterations[ROUNDS];

static void *worker(void *arg)
{
    (void)arg;
    int n = 0;
    while (!stop && n < MAX_ITERATIONS) {
        n++;
        sleep_until_round_us((long)n * PERIOD_US);
    }
    iterations[round_no] = n;
    log_line("worker: stopped after %d iterations\n", n);
    return NULL;
}

static void *controller(void *arg)
{
    (void)arg;
    pipe_roundtrip(control_pipe, "shutdown requested");
    sleep_until_round_us(STOP_AT_US);
    stop = 1;
    log_line("controller: stop set\n");
    return NULL;
}

int main(void)
{
    make_pipe(control_pipe);
    log_open();
    void *(*const workers[])(void *) = {worker, controller};
    for (int r = 0; r < ROUNDS; r++) {
        stop = 0;
        COMPILER_BARRIER();
        run_round(r, workers, 2);
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++)
        printf("race stop_flag round %02d: worker ran %d iterations before it saw stop\n", r,
               iterations[r]);
    return 0;
}
