/*
 * Maps a small data file it did not write (argv[1]) privately and
 * read-only, as the dynamic loader maps /etc/ld.so.cache, and prints it.
 * The file may change or go away after the recording: replay must still
 * show what the recording mapped.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

int main(int argc, char **argv)
{
    CHECK(argc == 2, "usage: mapped_data FILE");
    int fd = open(argv[1], O_RDONLY);
    CHECK(fd >= 0, "open");
    struct stat st;
    CHECK(fstat(fd, &st) == 0 && st.st_size > 0, "fstat");
    const char *p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    CHECK(p != MAP_FAILED, "mmap");
    close(fd);
    if (st.st_size <= 100)
        printf("mapped %lld bytes: %.*s", (long long)st.st_size, (int)st.st_size, p);
    else
        printf("mapped %lld bytes, hash %016llx\n", (long long)st.st_size,
               (unsigned long long)fnv1a(p, st.st_size));
    return 0;
}
