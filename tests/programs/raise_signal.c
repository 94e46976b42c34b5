/* Prints, then kills itself with SIGTERM (a signal it sends itself). */
#include <signal.h>
#include <stdio.h>

int main(void)
{
    printf("raise_signal: about to raise SIGTERM\n");
    fflush(stdout);
    raise(SIGTERM);
    printf("raise_signal: still alive?\n");
    return 0;
}
