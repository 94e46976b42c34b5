/* What a program can see of where it may run, first thing in main: the
 * processors in /proc/self/status, its affinity mask, and its huge-page
 * setting. rrc runs its tracer and the starting program on one processor,
 * and itself without transparent huge pages: neither may show. */
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

int main(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "Cpus_allowed_list:", 18) == 0) fputs(line, stdout);
  if (f) fclose(f);
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) printf("affinity: %d processors\n", CPU_COUNT(&set));
  printf("THP disabled: %d\n", prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0));
  return 0;
}
