/* A thread busy enough to leave rrc's rdtsc trap (1,100 clock reads
 * through the shim, after which rrc has patched this program's rdtsc),
 * then sets its own rdtsc mode: under PR_TSC_SIGSEGV its rdtsc must fault
 * as SIGSEGV, as natively (a handler skips the instruction), and after
 * PR_TSC_ENABLE run again. Prints what a native run prints. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <ucontext.h>
#include <x86intrin.h>

static volatile int faults, segv;

static void skip_rdtsc(int sig, siginfo_t *si, void *ctx)
{
    (void)si;
    segv += sig == SIGSEGV;
    ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP] += 2;
    faults++;
}

int main(void)
{
    struct timespec ts;
    long sum = 0;
    for (int i = 0; i < 1100; i++) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sum += ts.tv_nsec & 1;
    }
    printf("clock reads done (%s)\n", sum >= 0 ? "ok" : "?");
    unsigned long long before = __rdtsc();
    printf("rdtsc before own mode: %s\n", before ? "a value" : "zero");

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = skip_rdtsc;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    printf("set sigsegv: %d\n", prctl(PR_SET_TSC, PR_TSC_SIGSEGV));
    __asm__ volatile("rdtsc" ::: "rax", "rdx");
    printf("faults after one rdtsc: %d, of them SIGSEGV: %d\n", faults, segv);
    printf("set enable: %d\n", prctl(PR_SET_TSC, PR_TSC_ENABLE));
    unsigned long long t = __rdtsc();
    printf("faults after another: %d (read %s)\n", faults, t ? "a value" : "zero");
    return 0;
}
