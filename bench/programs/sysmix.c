/* A mix of hot calls from 4 threads: each does ROUNDS rounds of a
 * clock_gettime, a 64-byte write to /dev/null (not stdout), a getppid and
 * a mutex lock/unlock. scripts/sysmix-bench.py times it natively and
 * recorded (issue 13: under 5x native wall time). */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static long shared;
static int fd;
static int rounds = 5000;

static void *work(void *a) {
  (void)a;
  char buf[64] = {0};
  struct timespec ts;
  for (int i = 0; i < rounds; i++) {
    clock_gettime(CLOCK_MONOTONIC, &ts);
    if (write(fd, buf, sizeof buf) != sizeof buf) abort();
    long p = getppid();
    pthread_mutex_lock(&m);
    shared += p & 1;
    pthread_mutex_unlock(&m);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc > 1) rounds = atoi(argv[1]);
  fd = open("/dev/null", O_WRONLY);
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  printf("%ld\n", shared);
  return 0;
}
