/*
 * Views of a file the program makes and fills itself, which must stay
 * views of one file in replay: two shared mappings of a new file (a
 * write through one shows in the other), pwrite and write showing in the
 * mappings, a second open of the file by its path writing through its
 * own position, a fork child writing through the mapping, bytes spliced
 * in from a pipe and read back, and a memfd
 * given its size with ftruncate and then mapped (its pages exist only
 * because ftruncate ran).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define PAGE 4096

int main(void)
{
    int fd = open("views.bin", O_RDWR | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0, "open views.bin");
    CHECK(ftruncate(fd, 2 * PAGE) == 0, "ftruncate");
    char *w = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    const char *r = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(w != MAP_FAILED && r != MAP_FAILED, "mmap");
    w[10] = 'a';
    CHECK(pwrite(fd, "b", 1, 11) == 1, "pwrite");
    CHECK(lseek(fd, 12, SEEK_SET) == 12 && write(fd, "c", 1) == 1, "write");
    int again = open("views.bin", O_RDWR);
    CHECK(again >= 0, "reopen views.bin");
    CHECK(write(again, "d", 1) == 1, "write through the second open");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        w[PAGE] = 'e';
        _exit(0);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child && status == 0, "waitpid");
    printf("through the mappings: %c%c%c %c %c\n", r[10], r[11], r[12], r[0], r[PAGE]);

    /* Bytes spliced in from a pipe (a call replay emulates), read back. */
    int sp[2];
    CHECK(pipe(sp) == 0 && write(sp[1], "gh", 2) == 2, "pipe");
    loff_t at = 20;
    CHECK(splice(sp[0], NULL, fd, &at, 2, 0) == 2, "splice");
    char got[3] = {0, 0, 0};
    CHECK(pread(fd, got, 2, 20) == 2, "pread after splice");
    printf("spliced in: %s\n", got);

    int mfd = memfd_create("views", 0);
    CHECK(mfd >= 0, "memfd_create");
    CHECK(ftruncate(mfd, PAGE) == 0, "ftruncate memfd");
    char *m = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(m != MAP_FAILED, "mmap memfd");
    m[PAGE - 1] = 'f';
    char back;
    CHECK(pread(mfd, &back, 1, PAGE - 1) == 1, "pread memfd");
    printf("memfd's last byte: %c\n", back);
    CHECK(unlink("views.bin") == 0, "unlink");
    return 0;
}
