/*
 * Check-then-act on a shared flag: two acceptor threads hand out one
 * connection slot guarded by a plain `slot_busy` flag, with no lock. Each
 * checks the flag and, when it is clear, logs the claim (a write) and then
 * sets the flag.
 *
 * Acceptor A waits for its client (a sleep to 0.6 ms, a pipe round trip)
 * and checks at ~0.7 ms; acceptor B sleeps once and checks at 25 ms.
 * Natively B nearly always finds the slot taken. When the sleeps return at
 * once, B, with fewer syscalls to get through, tends to check first or
 * inside A's check-to-set window, and the slot goes to B, or to both.
 */
#include "racebench.h"

#define ROUNDS 6
#define A_CLIENT_AT_US 600
#define B_CHECK_AT_US 25000

static volatile int slot_busy;
static int client_pipe[2];

static int a_claimed[ROUNDS];
static int b_claimed[ROUNDS];
static int b_saw_busy[ROUNDS];

static void *acceptor_a(void *arg)
{
    (void)arg;
    sleep_until_round_us(A_CLIENT_AT_US);
    pipe_roundtrip(client_pipe, "GET /slot HTTP/1.0");
    if (!slot_busy) {
        log_line("A claims the slot\n");
        slot_busy = 1;
        a_claimed[round_no] = 1;
    } else {
        log_line("A finds the slot busy\n");
    }
    return NULL;
}

static void *acceptor_b(void *arg)
{
    (void)arg;
    sleep_until_round_us(B_CHECK_AT_US);
    int busy = slot_busy;
    b_saw_busy[round_no] = busy;
    if (!busy) {
        log_line("B claims the slot\n");
        slot_busy = 1;
        b_claimed[round_no] = 1;
    } else {
        log_line("B finds the slot busy\n");
    }
    return NULL;
}

int main(void)
{
    make_pipe(client_pipe);
    log_open();
    void *(*const workers[])(void *) = {acceptor_a, acceptor_b};
    for (int r = 0; r < ROUNDS; r++) {
        slot_busy = 0;
        COMPILER_BARRIER();
        run_round(r, workers, 2);
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++) {
        const char *owner = a_claimed[r] && b_claimed[r] ? "A and B (double claim)"
                            : a_claimed[r]               ? "A"
                                                         : "B";
        printf("race check_then_act round %02d: B saw busy=%d, slot claimed by %s\n", r,
               b_saw_busy[r], owner);
    }
    return 0;
}
