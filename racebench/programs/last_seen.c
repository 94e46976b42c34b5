/*
 * A racy "last seen" timestamp: two connection threads each handle a
 * message (a pipe round trip) and store the time they saw it, read with
 * clock_gettime, into a shared `last_seen` (two plain stores: seconds and
 * nanoseconds); a monitor thread later copies `last_seen` to report how
 * long the server has been idle.
 *
 * Connection 1 gets its message at 0.6 ms and stamps, connection 2 gets
 * its message at 12.5 ms and stamps, the monitor reads at 25 ms. Natively the
 * monitor sees connection 2's stamp. When the sleeps return at once, the
 * monitor tends to see connection 1's stamp, no stamp at all, or a torn
 * mix of the two.
 */
#include "racebench.h"

#define ROUNDS 6
#define CONN1_AT_US 600
#define CONN2_AT_US 12500
#define MONITOR_AT_US 25000

struct stamp {
    volatile long sec;
    volatile long nsec;
};

static struct stamp last_seen;
static int conn_pipe[2][2];

static struct stamp written[ROUNDS][2];
static struct stamp monitor_saw[ROUNDS];

static void stamp_now(int conn)
{
    struct timespec ts;
    CHECK(clock_gettime(CLOCK_REALTIME, &ts) == 0, "clock_gettime");
    last_seen.sec = ts.tv_sec;
    COMPILER_BARRIER();
    last_seen.nsec = ts.tv_nsec;
    written[round_no][conn].sec = ts.tv_sec;
    written[round_no][conn].nsec = ts.tv_nsec;
}

static void *connection_1(void *arg)
{
    (void)arg;
    sleep_until_round_us(CONN1_AT_US);
    pipe_roundtrip(conn_pipe[0], "PING 1");
    stamp_now(0);
    log_line("connection 1: message handled\n");
    return NULL;
}

static void *connection_2(void *arg)
{
    (void)arg;
    sleep_until_round_us(CONN2_AT_US);
    pipe_roundtrip(conn_pipe[1], "PING 2");
    stamp_now(1);
    log_line("connection 2: message handled\n");
    return NULL;
}

static void *monitor(void *arg)
{
    (void)arg;
    sleep_until_round_us(MONITOR_AT_US);
    struct stamp *saw = &monitor_saw[round_no];
    saw->sec = last_seen.sec;
    COMPILER_BARRIER();
    saw->nsec = last_seen.nsec;
    log_line("monitor: last seen at %ld.%09ld\n", saw->sec, saw->nsec);
    return NULL;
}

static int same(const struct stamp *a, const struct stamp *b)
{
    return a->sec == b->sec && a->nsec == b->nsec;
}

int main(void)
{
    make_pipe(conn_pipe[0]);
    make_pipe(conn_pipe[1]);
    log_open();
    void *(*const workers[])(void *) = {connection_1, connection_2, monitor};
    for (int r = 0; r < ROUNDS; r++) {
        last_seen.sec = 0;
        last_seen.nsec = 0;
        run_round(r, workers, 3);
        log_drain();
        idle_between_rounds();
    }
    for (int r = 0; r < ROUNDS; r++) {
        const struct stamp *saw = &monitor_saw[r];
        const char *whose = same(saw, &written[r][1])          ? "connection 2's stamp"
                            : same(saw, &written[r][0])        ? "connection 1's stamp"
                            : saw->sec == 0 && saw->nsec == 0 ? "no stamp"
                                                              : "a torn stamp";
        printf("race last_seen round %02d: monitor saw %s\n", r, whose);
    }
    for (int r = 0; r < ROUNDS; r++)
        printf("info last_seen round %02d: %ld.%09ld\n", r, monitor_saw[r].sec,
               monitor_saw[r].nsec);
    return 0;
}
