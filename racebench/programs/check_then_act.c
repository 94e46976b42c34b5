/*
 * Check-then-act on a shared flag: two acceptor threads hand out one
 * connection slot guarded by a plain `slot_busy` flag, with no lock. Each
 * checks the flag and, when it is clear, logs the claim and sets it.
 *
 * Acceptor A reaches its check after ~0.4 ms of short sleeps and pipe
 * I/O, logs its claim (a write) and sets the flag; acceptor B checks after
 * one sleep to ~1.2 ms. Natively B nearly always finds the slot taken; when
 * the sleeps return at once, B often checks first or inside A's window,
 * and the slot is claimed twice, or by B alone.
 */
#include "racebench.h"

#define ROUNDS 16

static struct rounds rounds;
static volatile int slot_busy;
static int a_pipe[2];
static int log_pipe[2];

static int a_claimed[ROUNDS];
static int b_claimed[ROUNDS];
static int b_saw[ROUNDS];

static void claim_log(const char *who)
{
    char line[32];
    int len = snprintf(line, sizeof line, "claim %s\n", who);
    CHECK(write(log_pipe[1], line, (size_t)len) == len, "write log");
}

static void *acceptor_a(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t start = round_begin(&rounds);
        sleep_us(100);
        pipe_roundtrip(a_pipe, "hello from client 1");
        sleep_until_ns(start + 400 * 1000);
        if (!slot_busy) {
            claim_log("A");
            slot_busy = 1;
            a_claimed[r] = 1;
        }
        round_end(&rounds);
    }
    return NULL;
}

static void *acceptor_b(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t start = round_begin(&rounds);
        sleep_until_ns(start + 1200 * 1000);
        int seen = slot_busy;
        b_saw[r] = seen;
        if (!seen) {
            claim_log("B");
            slot_busy = 1;
            b_claimed[r] = 1;
        }
        round_end(&rounds);
    }
    return NULL;
}

int main(void)
{
    make_pipe(a_pipe);
    make_pipe(log_pipe);
    rounds_init(&rounds, 2, ROUNDS);
    pthread_t a, b;
    start_thread(&a, acceptor_a, NULL);
    start_thread(&b, acceptor_b, NULL);
    for (int r = 0; r < ROUNDS; r++) {
        slot_busy = 0;
        round_open(&rounds);
        round_close(&rounds);
        /* Drain the claim log, as a logger thread would. */
        char buf[64];
        CHECK(read(log_pipe[0], buf, sizeof buf) > 0, "read log");
    }
    join_thread(a);
    join_thread(b);
    for (int r = 0; r < ROUNDS; r++) {
        const char *owners = a_claimed[r] && b_claimed[r] ? "A+B (double claim)"
                             : a_claimed[r]                ? "A"
                                                           : "B";
        printf("race check_then_act round %02d: B saw busy=%d, slot claimed by %s\n", r, b_saw[r],
               owners);
    }
    return 0;
}
