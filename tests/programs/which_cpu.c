/* Threads print the processor they run on (sched_getcpu) as they go. glibc
 * reads it from the kernel's rseq area without a system call when rseq is
 * registered: rrc makes rseq fail as on an older kernel, so the answer
 * comes from a getcpu call it records and replays. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

static void *run(void *arg) {
  long id = (long)arg;
  char line[256];
  int n = 0;
  for (int i = 0; i < 40; i++) {
    n += snprintf(line + n, sizeof line - n, "%d", sched_getcpu());
    if (i % 10 == 9) usleep(300);
    volatile long spin = 0;
    for (long k = 0; k < 20000 * (id + 1); k++) spin += k;
  }
  printf("thread %ld: %s\n", id, line);
  return NULL;
}

int main(void) {
  pthread_t t[3];
  for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, run, (void *)i);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  return 0;
}
