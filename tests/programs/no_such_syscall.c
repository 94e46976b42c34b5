/* Calls syscall numbers the kernel does not have (-1, as rr's test
 * helpers do, and a number far past the last), between clock reads. */
#include <errno.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
    for (int i = 0; i < 3; i++) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long r = syscall(-1);
        int e = errno;
        long r2 = syscall(100000);
        printf("no_such_syscall: at %ld.%09ld: syscall(-1) = %ld (errno %d), syscall(100000) = %ld\n",
               (long)ts.tv_sec, ts.tv_nsec, r, e, r2);
    }
    return 0;
}
