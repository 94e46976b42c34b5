/*
 * Calls that write back the time they had left when a signal interrupts
 * them: nanosleep, clock_nanosleep, select and ppoll, each cut short by a
 * one-shot SIGALRM whose handler has no SA_RESTART. The remaining times
 * differ from run to run (to the nanosecond): replay must give back the
 * recorded ones. Then an absolute clock_nanosleep, interrupted, which
 * must leave its `remain` argument alone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/select.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void alarm_in_2ms(void)
{
    struct itimerval once = {{0, 0}, {0, 2000}};
    CHECK(setitimer(ITIMER_REAL, &once, NULL) == 0, "setitimer");
}

static void report(const char *what, int ret, int err, long sec, long nsec)
{
    printf("%s: ret %d errno %d left %ld.%09ld alarms %d\n", what, ret, ret < 0 ? err : 0, sec,
           nsec, (int)alarms);
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0, "sigaction");

    struct timespec req = {0, 200000000}, rem = {0, 0};
    alarm_in_2ms();
    int r = nanosleep(&req, &rem);
    report("nanosleep", r, errno, rem.tv_sec, rem.tv_nsec);

    rem.tv_sec = rem.tv_nsec = 0;
    alarm_in_2ms();
    r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req, &rem);
    report("clock_nanosleep", r == 0 ? 0 : -1, r, rem.tv_sec, rem.tv_nsec);

    struct timeval tv = {0, 200000};
    alarm_in_2ms();
    r = select(0, NULL, NULL, NULL, &tv);
    report("select", r, errno, tv.tv_sec, tv.tv_usec * 1000L);

    int p[2];
    CHECK(pipe(p) == 0, "pipe");
    struct pollfd pfd = {.fd = p[0], .events = POLLIN};
    struct timespec pt = {0, 200000000};
    alarm_in_2ms();
    r = ppoll(&pfd, 1, &pt, NULL);
    report("ppoll", r, errno, pt.tv_sec, pt.tv_nsec);

    struct timespec now;
    CHECK(clock_gettime(CLOCK_MONOTONIC, &now) == 0, "clock_gettime");
    now.tv_nsec += 50000000;
    if (now.tv_nsec >= 1000000000) {
        now.tv_sec++;
        now.tv_nsec -= 1000000000;
    }
    struct timespec untouched = {7, 7};
    alarm_in_2ms();
    r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &now, &untouched);
    report("absolute clock_nanosleep", r == 0 ? 0 : -1, r, untouched.tv_sec, untouched.tv_nsec);
    return 0;
}
