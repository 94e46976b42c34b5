/* What a program can see of where it may run: the processors in
 * /proc/self/status, its affinity mask, and its huge-page setting, first
 * thing in main and again after 20,000 trapped calls. rrc runs its tracer
 * and the starting program on one processor, the tracer and a thread that
 * makes most of the trapped calls on one processor later, and itself
 * without transparent huge pages: none of it may show. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void look(const char *when) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) printf("%s %s", when, line);
  if (f) fclose(f);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    printf("%s affinity: %d processors\n", when, CPU_COUNT(&set));
}

int main(void) {
  look("start");
  printf("THP disabled: %d\n", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
  /* close of a descriptor that is not open: a call rrc traps. */
  for (int i = 0; i < 20000; i++) close(1000);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    printf("busy affinity first: %d processors\n", CPU_COUNT(&set));
  for (int i = 0; i < 20000; i++) close(1000);
  look("busy");
  return 0;
}
