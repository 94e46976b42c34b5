/* Three threads take numbers from one stdin with scanf and print what
 * they took into stdout's small, fully buffered buffer, with progress on
 * unbuffered stderr; every 25 numbers a thread calls fflush(NULL), which
 * empties every stream's buffer under locks glibc takes inline. Which
 * thread gets which number, and where each write(2) of stdout ends,
 * depend on the order the threads took stdin's and stdout's locks. */
#include <pthread.h>
#include <stdio.h>

static char out_buf[512];
static pthread_mutex_t sum_lock = PTHREAD_MUTEX_INITIALIZER;
static long sum;

static void *reader(void *arg) {
  long id = (long)arg;
  int x, n = 0;
  while (scanf("%d", &x) == 1) {
    pthread_mutex_lock(&sum_lock);
    sum += x;
    long seen = sum;
    pthread_mutex_unlock(&sum_lock);
    printf("t%ld took %d, sum %ld\n", id, x, seen);
    if (++n % 25 == 0) {
      fprintf(stderr, "t%ld progress %d\n", id, n);
      fflush(NULL);
    }
    putchar('.');
    putchar('\n');
  }
  return NULL;
}

int main(void) {
  setvbuf(stdout, out_buf, _IOFBF, sizeof out_buf);
  pthread_t t[3];
  for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, reader, (void *)i);
  for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
  printf("sum %ld\n", sum);
  return 0;
}
