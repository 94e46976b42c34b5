/*
 * A bystander for the isolation tests: counts the SIGUSR1s it receives.
 * Prints "ready PID" once its handler is in place, then "got N" (the
 * count so far) for every line on its stdin, until stdin closes.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t count;

static void on_usr1(int sig)
{
    (void)sig;
    count++;
}

int main(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1;
    sa.sa_flags = SA_RESTART;
    CHECK(sigaction(SIGUSR1, &sa, NULL) == 0, "sigaction");
    printf("ready %d\n", (int)getpid());
    fflush(stdout);
    char line[64];
    while (fgets(line, sizeof line, stdin)) {
        printf("got %d\n", (int)count);
        fflush(stdout);
    }
    return 0;
}
