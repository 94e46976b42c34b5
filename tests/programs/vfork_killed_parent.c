/* A process killed while in vfork: the kernel had made its child, which
 * kills it and goes on. The vfork never returned, yet it happened, and
 * replay must make the child too; the child, still on the dead parent's
 * stack, keeps making calls. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  int ready[2];
  if (pipe(ready) != 0)
    return 1;
  pid_t middle = fork();
  if (middle == 0) {
    pid_t parent = getpid();
    if (vfork() == 0) {
      kill(parent, SIGKILL);
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      char c = 'a' + now.tv_nsec % 26;
      const char line[] = "vfork child: my parent is gone\n";
      write(1, line, strlen(line));
      write(ready[1], &c, 1);
      _exit(0);
    }
    _exit(3);
  }
  int status = 0;
  waitpid(middle, &status, 0);
  char c = 0;
  if (read(ready[0], &c, 1) != 1)
    return 2;
  printf("middle killed by signal %d in its vfork; the child sent %c\n",
         WIFSIGNALED(status) ? WTERMSIG(status) : 0, c);
  return 0;
}
