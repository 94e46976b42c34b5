/* Prints a line to stdout and one to stderr, then exits with argv[1]. */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    int code = argc > 1 ? atoi(argv[1]) : 0;
    printf("exit_code: exiting with status %d\n", code);
    fprintf(stderr, "exit_code: goodbye from stderr\n");
    return code;
}
