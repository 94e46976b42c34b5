/*
 * Reports whether descriptor 5 is open (inherited), then opens three
 * files and prints the numbers it got: they depend on what it inherited.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "common.h"

int main(void)
{
    printf("descriptor 5 %s\n", fcntl(5, F_GETFD) >= 0 ? "open" : "closed");
    int a = open("/dev/null", O_RDONLY);
    int b = open("/dev/null", O_RDONLY);
    int c = open("/dev/null", O_RDONLY);
    printf("opened %d %d %d\n", a, b, c);
    return 0;
}
