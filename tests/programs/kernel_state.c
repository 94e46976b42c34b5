/* State the kernel writes, which replay must give back as recorded:
 * thread ids written at clone (CLONE_PARENT_SETTID, CLONE_CHILD_SETTID)
 * and returned by set_tid_address, the futex wake of a thread's exit,
 * /dev/zero mappings, output through a dup of stdout, and a daemonised
 * grandchild left running when the program exits. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int exit_word = 1;

static void *clears_on_exit(void *arg) {
  (void)arg;
  long tid = syscall(SYS_set_tid_address, &exit_word);
  printf("set_tid_address is gettid: %d\n", tid == syscall(SYS_gettid));
  return NULL;
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  /* The kernel clears exit_word and wakes it when the thread exits. */
  pthread_t t;
  pthread_create(&t, NULL, clears_on_exit, NULL);
  while (__atomic_load_n(&exit_word, __ATOMIC_ACQUIRE) != 0)
    syscall(SYS_futex, &exit_word, FUTEX_WAIT, 1, NULL, NULL, 0);
  /* No pthread_join: the kernel no longer clears the thread's own tid. */
  printf("cleared at exit: %d\n", exit_word == 0);

  /* A fork by raw clone, with the new pid written on both sides. */
  pid_t ptid = 0, ctid = 0;
  long child = syscall(SYS_clone, CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | SIGCHLD,
                       NULL, &ptid, &ctid, NULL);
  if (child == 0)
    _exit(ctid == syscall(SYS_gettid) ? 0 : 1);
  int status;
  waitpid(child, &status, 0);
  printf("parent_tid is the child: %d; child_tid too: %d\n", ptid == child,
         WIFEXITED(status) && WEXITSTATUS(status) == 0);

  /* /dev/zero, shared with a child. */
  int zero = open("/dev/zero", O_RDWR);
  int *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, zero, 0);
  if (shared == MAP_FAILED)
    return 2;
  /* The child says it wrote through a pipe: replay does not yet hold an
   * emulated wait until the reaped child has really exited. */
  int wrote[2];
  pipe(wrote);
  if (fork() == 0) {
    shared[0] = 42;
    write(wrote[1], "w", 1);
    _exit(0);
  }
  char w;
  read(wrote[0], &w, 1);
  wait(NULL);
  printf("/dev/zero shared: %d\n", shared[0]);

  /* Output through a dup of stdout. */
  int out = dup(1);
  const char line[] = "through a dup of stdout\n";
  write(out, line, strlen(line));

  /* A daemon left behind: the recording ends without it. */
  int ready[2];
  pipe(ready);
  if (fork() == 0) {
    if (fork() != 0)
      _exit(0);
    setsid();
    write(ready[1], "x", 1);
    for (;;)
      pause();
  }
  char c;
  read(ready[0], &c, 1);
  printf("daemon started: %c\n", c);
  return 0;
}
