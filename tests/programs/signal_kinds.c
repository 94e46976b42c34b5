/*
 * Signal and process corners, one after another: sigqueue() to itself with
 * a value read by an SA_SIGINFO handler; a child killed with SIGKILL; a
 * write to a pipe with no reader while SIGPIPE is ignored; waitid(); a
 * sigtimedwait() that times out; ITIMER_PROF ticks during computation; a
 * POSIX timer delivering a realtime signal; an orphaned grandchild; and
 * killpg() of a child's own process group (made with setpgid).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <errno.h>
static volatile int got_val=-1, got_pid_ok=0, prof_ticks=0, rt_count=0;
static void info_h(int s, siginfo_t *si, void *u){(void)s;(void)u; got_val=si->si_value.sival_int; got_pid_ok = (si->si_pid==getppid() || si->si_pid==getpid());}
static void prof_h(int s){(void)s; prof_ticks++;}
static void rt_h(int s){(void)s; rt_count++;}
int main(void){
  struct sigaction sa; memset(&sa,0,sizeof sa); sa.sa_sigaction=info_h; sa.sa_flags=SA_SIGINFO; sigaction(SIGUSR1,&sa,0);
  union sigval v; v.sival_int=4242; sigqueue(getpid(), SIGUSR1, v); printf("sigqueue value %d pidok %d\n", got_val, got_pid_ok);
  // child killed by SIGKILL
  fflush(stdout); pid_t c=fork(); if(c==0){ for(;;) pause(); }
  usleep(2000); kill(c,SIGKILL); int st; waitpid(c,&st,0); printf("child killed: %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
  // SIGPIPE ignored -> EPIPE
  signal(SIGPIPE, SIG_IGN); int p[2]; pipe(p); close(p[0]); errno=0; ssize_t r=write(p[1],"x",1); printf("write to closed pipe: %zd errno %d\n", r, errno);
  // waitid
  fflush(stdout); c=fork(); if(c==0) _exit(33); siginfo_t si; memset(&si,0,sizeof si); waitid(P_PID,c,&si,WEXITED); printf("waitid status %d code %d\n", si.si_status, si.si_code);
  // sigtimedwait timeout
  sigset_t s; sigemptyset(&s); sigaddset(&s,SIGUSR2); sigprocmask(SIG_BLOCK,&s,0); struct timespec to={0,3000000}; int w=sigtimedwait(&s,0,&to); printf("sigtimedwait %d errno %d\n", w, errno);
  // ITIMER_PROF during compute
  signal(SIGPROF, prof_h); struct itimerval it={{0,1000},{0,1000}}; setitimer(ITIMER_PROF,&it,0);
  volatile double x=0; for(int k=0;k<5;k++){ for(long i=0;i<3000000;i++) x+=i; getppid(); }
  struct itimerval z={0}; setitimer(ITIMER_PROF,&z,0); printf("prof ticks>0 %d\n", prof_ticks>0);
  // POSIX timer with realtime signal
  signal(SIGRTMIN, rt_h); timer_t t; struct sigevent ev; memset(&ev,0,sizeof ev); ev.sigev_notify=SIGEV_SIGNAL; ev.sigev_signo=SIGRTMIN; timer_create(CLOCK_MONOTONIC,&ev,&t);
  struct itimerspec its={{0,2000000},{0,2000000}}; timer_settime(t,0,&its,0); while(rt_count<5) pause(); timer_delete(t); printf("rt timer fired %d\n", rt_count);
  // grandchild + orphan
  fflush(stdout); c=fork(); if(c==0){ fflush(stdout); pid_t g=fork(); if(g==0){ usleep(3000); printf("grandchild parent is init-ish: %d\n", getppid()!=0); fflush(stdout); _exit(0);} _exit(5);} waitpid(c,&st,0); usleep(10000); printf("middle exited %d\n", WEXITSTATUS(st));
  // killpg to own group child
  fflush(stdout); c=fork(); if(c==0){ setpgid(0,0); for(;;) pause(); } usleep(2000); setpgid(c,c); killpg(c,SIGTERM); waitpid(c,&st,0); printf("killpg: sig %d\n", WTERMSIG(st));
  return 0;
}
