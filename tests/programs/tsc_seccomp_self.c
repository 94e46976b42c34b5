/* What a program sees of its own rdtsc mode, seccomp mode and SIGSEGV
 * mask: the same with rrc as without, though rrc traps rdtsc and installs
 * a seccomp filter. Asks PR_GET_SECCOMP and PR_GET_TSC, switches rdtsc
 * to SIGSEGV (a handler skips the instruction) and back, then blocks
 * SIGSEGV and execs itself, which checks the mask survived. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <ucontext.h>
#include <unistd.h>
#include <x86intrin.h>

static volatile int faults;

static void skip_rdtsc(int sig, siginfo_t *si, void *ctx)
{
    (void)sig;
    (void)si;
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP] += 2;
    faults++;
}

int main(int argc, char **argv)
{
    sigset_t set;
    if (argc == 2 && strcmp(argv[1], "after-exec") == 0) {
        sigprocmask(SIG_SETMASK, NULL, &set);
        printf("after exec: SIGSEGV blocked %d\n", sigismember(&set, SIGSEGV));
        return 0;
    }
    int mode = -1;
    printf("seccomp mode %d\n", prctl(PR_GET_SECCOMP));
    prctl(PR_GET_TSC, &mode);
    printf("tsc mode %d (enable is %d)\n", mode, PR_TSC_ENABLE);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = skip_rdtsc;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    printf("set sigsegv: %d\n", prctl(PR_SET_TSC, PR_TSC_SIGSEGV));
    prctl(PR_GET_TSC, &mode);
    printf("tsc mode %d (sigsegv is %d)\n", mode, PR_TSC_SIGSEGV);
    __asm__ volatile("rdtsc" ::: "rax", "rdx");
    printf("faults after one rdtsc: %d\n", faults);
    printf("set enable: %d\n", prctl(PR_SET_TSC, PR_TSC_ENABLE));
    unsigned long long t = __rdtsc();
    printf("faults after another: %d (read %s)\n", faults, t ? "a value" : "zero");
    fflush(stdout);

    sigemptyset(&set);
    sigaddset(&set, SIGSEGV);
    sigprocmask(SIG_SETMASK, &set, NULL);
    char *again[] = {argv[0], "after-exec", NULL};
    execv("/proc/self/exe", again);
    perror("execv");
    return 1;
}
