/*
 * An interval timer whose handler counts ticks while the main thread
 * spins without making any syscall, until 5 ticks (or the number given)
 * have arrived. A signal for a thread that never reaches a syscall must
 * still be delivered (after a bounded wait), when recording and when
 * replaying.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/time.h>

#include "common.h"

static volatile sig_atomic_t ticks;

static void on_alarm(int sig)
{
    (void)sig;
    ticks++;
}

int main(int argc, char **argv)
{
    int want = argc > 1 ? atoi(argv[1]) : 5;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");
    struct itimerval every_2ms = {{0, 2000}, {0, 2000}};
    CHECK(setitimer(ITIMER_REAL, &every_2ms, NULL) == 0, "setitimer");
    while (ticks < want)
        ;
    struct itimerval off = {{0, 0}, {0, 0}};
    CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0, "setitimer off");
    printf("busy_timer: %d ticks\n", (int)ticks);
    return 0;
}
