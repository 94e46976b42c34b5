/*
 * Lost update on a statistics counter: two request handlers each count
 * the request they served with a non-atomic read-modify-write of a shared
 * `requests` counter, and log the request between the read and the write
 * (the window spans a syscall, as when a handler formats its response
 * between loading and storing a statistic).
 *
 * Handler A serves its request (a sleep to 0.6 ms, a pipe round trip),
 * then reads the counter, logs and stores; handler B reads at 25 ms.
 * Natively the windows never overlap and every request is counted. When
 * the sleeps return at once, B tends to read inside A's window (or A
 * inside B's), and one increment is lost.
 */
#include "racebench.h"

#define ROUNDS 6
#define A_REQUEST_AT_US 600
#define B_REQUEST_AT_US 25000

static volatile long requests;
static int request_pipe[2];

static long before_round[ROUNDS];
static long after_round[ROUNDS];

static void count_request(const char *who)
{
    long seen = requests;
    log_line("%s served request %ld\n", who, seen + 1);
    requests = seen + 1;
}

static void *handler_a(void *arg)
{
    (void)arg;
    sleep_until_round_us(A_REQUEST_AT_US);
    pipe_roundtrip(request_pipe, "POST /upload");
    count_request("A");
    return NULL;
}

static void *handler_b(void *arg)
{
    (void)arg;
    sleep_until_round_us(B_REQUEST_AT_US);
    count_request("B");
    return NULL;
}

int main(void)
{
    make_pipe(request_pipe);
    log_open();
    void *(*const workers[])(void *) = {handler_a, handler_b};
    for (int r = 0; r < ROUNDS; r++) {
        before_round[r] = requests;
        run_round(r, workers, 2);
        after_round[r] = requests;
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++) {
        long counted = after_round[r] - before_round[r];
        printf("race lost_update round %02d: counter %ld -> %ld, %ld of 2 requests counted\n", r,
               before_round[r], after_round[r], counted);
    }
    printf("info lost_update: %ld of %d requests counted\n", requests, 2 * ROUNDS);
    return 0;
}
