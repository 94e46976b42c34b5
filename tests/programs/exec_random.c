/* Prints the 16 random bytes the kernel gives each new program (AT_RANDOM
 * in its auxiliary vector; glibc seeds its stack canary from them), then
 * execs itself once and prints the new program's. No call shows them:
 * rrc keeps them with each exec when recording and writes them back when
 * replaying. */
#include <stdio.h>
#include <sys/auxv.h>
#include <unistd.h>

int main(int argc, char **argv) {
  const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
  printf("program %d random ", argc);
  for (int i = 0; i < 16; i++) printf("%02x", r[i]);
  printf("\n");
  fflush(stdout);
  if (argc == 1) {
    execl(argv[0], argv[0], "again", (char *)0);
    perror("execl");
    return 1;
  }
  return 0;
}
