/* Writes numbered lines to stdout until told to stop: natively, a reader
 * that goes away (`| head -1`) ends it with SIGPIPE, unless SIGPIPE was
 * ignored when it started. Says on stderr how it ended. */
#include <stdio.h>

int main(void)
{
    for (int i = 0; i < 200000; i++) {
        if (printf("pipe_writer: line %d\n", i) < 0 || fflush(stdout) != 0) {
            fprintf(stderr, "pipe_writer: write failed at line %d\n", i);
            return 3;
        }
    }
    fprintf(stderr, "pipe_writer: wrote every line\n");
    return 0;
}
