/*
 * Writes random bytes and a timestamp to a fresh file in the directory
 * given as argv[1], syncs and closes it, reopens it, reads it back in
 * pieces (read, pread, lseek), renames it, lists the directory and prints
 * a checksum and the content. The test deletes the directory before
 * replay: replay must not need the file.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        size_t want = cap - got < 100 ? cap - got : 100;
        if (want == 0)
            break;
        ssize_t n = read(fd, buf + got, want);
        CHECK(n >= 0, "read");
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return got;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: tmpfile DIR\n");
        return 2;
    }
    char path[4096], renamed[4200];
    snprintf(path, sizeof path, "%s/rrc-data-XXXXXX", argv[1]);
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");

    unsigned char rnd[32];
    CHECK(getrandom(rnd, sizeof rnd, 0) == (ssize_t)sizeof rnd, "getrandom");
    struct timespec now;
    CHECK(clock_gettime(CLOCK_REALTIME, &now) == 0, "clock_gettime");

    char content[8192];
    size_t len = 0;
    len += (size_t)snprintf(content + len, sizeof content - len,
                            "rrc tmpfile test\ntime: %lld.%09ld\nrandom: ",
                            (long long)now.tv_sec, now.tv_nsec);
    for (size_t i = 0; i < sizeof rnd; i++)
        len += (size_t)snprintf(content + len, sizeof content - len, "%02x", rnd[i]);
    len += (size_t)snprintf(content + len, sizeof content - len, "\n");
    uint32_t x = (uint32_t)rnd[0] | (uint32_t)rnd[1] << 8 | (uint32_t)rnd[2] << 16;
    for (int i = 0; i < 40; i++) {
        x = x * 1664525u + 1013904223u;
        len += (size_t)snprintf(content + len, sizeof content - len,
                                "line %02d: %08x\n", i, x);
    }

    /* Several writes of different sizes. */
    size_t off = 0;
    while (off < len) {
        size_t chunk = len - off < 333 ? len - off : 333;
        ssize_t n = write(fd, content + off, chunk);
        CHECK(n > 0, "write");
        off += (size_t)n;
    }
    CHECK(fsync(fd) == 0, "fsync");
    CHECK(close(fd) == 0, "close");

    struct stat st;
    CHECK(stat(path, &st) == 0, "stat");

    fd = open(path, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0, "open for reading");
    char back[8192];
    size_t got = read_all(fd, back, sizeof back);
    char middle[17] = {0};
    CHECK(pread(fd, middle, 16, 17) == 16, "pread");
    off_t end = lseek(fd, 0, SEEK_END);
    CHECK(end >= 0, "lseek");
    CHECK(close(fd) == 0, "close");

    snprintf(renamed, sizeof renamed, "%s.done", path);
    CHECK(rename(path, renamed) == 0, "rename");

    int entries = 0;
    DIR *dir = opendir(argv[1]);
    CHECK(dir != NULL, "opendir");
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        entries += de->d_name[0] != '.';
    closedir(dir);

    printf("file: %s\n", strrchr(renamed, '/') + 1);
    printf("wrote %zu bytes, stat size %lld, read back %zu bytes, end at %lld\n",
           len, (long long)st.st_size, got, (long long)end);
    printf("checksum written %016llx, read %016llx, match: %s\n",
           (unsigned long long)fnv1a(content, len),
           (unsigned long long)fnv1a(back, got),
           got == len && memcmp(content, back, len) == 0 ? "yes" : "NO");
    printf("pread at 17: [%s]\n", middle);
    printf("directory entries: %d\n", entries);
    printf("--- content ---\n");
    fwrite(back, 1, got, stdout);
    printf("--- end ---\n");
    return 0;
}
