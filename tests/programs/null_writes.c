/* Writes to stdout directly and through a dup of it, and to a /dev/null
 * it opens itself: only the first two are output. A device is one inode
 * for every open of it, so a recorder whose own stdout is /dev/null must
 * not take the program's /dev/null for it. */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common.h"

static void say(int fd, const char *line)
{
    CHECK(write(fd, line, strlen(line)) == (ssize_t)strlen(line), "write");
}

int main(void)
{
    int copy = dup(1);
    CHECK(copy >= 0, "dup");
    int null = open("/dev/null", O_WRONLY);
    CHECK(null >= 0, "open /dev/null");
    for (int i = 0; i < 3; i++) {
        say(copy, "through a dup of stdout\n");
        say(null, "into the program's own /dev/null\n");
    }
    say(1, "straight to stdout\n");
    return 0;
}
