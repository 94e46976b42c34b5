/*
 * Sends SIGUSR1 to a process outside the recording (its pid is the
 * argument) with kill, then with rt_sigqueueinfo; probes every process
 * with kill(-1, 0) (signal 0 delivers nothing), and an unknown process
 * group. Then signals itself, which must still reach it in replay.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common.h"

static volatile sig_atomic_t own;

static void on_usr1(int sig)
{
    (void)sig;
    own++;
}

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: signal_other PID");
    pid_t other = (pid_t)atoi(argv[1]);
    signal(SIGUSR1, on_usr1);
    int rc = kill(other, SIGUSR1);
    printf("kill(%d, SIGUSR1) = %d\n", (int)other, rc);
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = SIGUSR1;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    rc = (int)syscall(SYS_rt_sigqueueinfo, other, SIGUSR1, &info);
    printf("rt_sigqueueinfo(%d, SIGUSR1) = %d\n", (int)other, rc);
    rc = kill(-1, 0);
    printf("kill(-1, 0) = %d\n", rc);
    rc = kill(-other, 0);
    printf("kill(-%d, 0) = %d\n", (int)other, rc);
    rc = kill(getpid(), SIGUSR1);
    printf("kill(self, SIGUSR1) = %d, handled %d\n", rc, (int)own);
    return 0;
}
