/*
 * File and socket I/O as servers make it, built the way Ubuntu's gcc
 * builds by default (_FORTIFY_SOURCE, so glibc's checked entry points
 * __read_chk, __pread64_chk, __recv_chk and __poll_chk are what the
 * program calls): two threads pwrite timestamped records into one file at
 * their own offsets, the main thread preads them back, and a pipe and a
 * socket pair carry the clock through read and recv after a poll. The
 * record's times and the interleaving make native runs differ.
 */
#define _FORTIFY_SOURCE 2
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define RECORDS 200
#define RECORD 32

static int file;
/* Not a constant: the fortified wrappers then call the checked entry points. */
static volatile size_t record_len = RECORD;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static void *writer(void *arg)
{
    long id = (long)arg;
    char rec[RECORD];
    for (long i = 0; i < RECORDS; i++) {
        memset(rec, 0, sizeof rec);
        snprintf(rec, sizeof rec, "%ld %ld %ld", id, i, now_ns() % 1000003);
        off_t at = (off_t)((i * 2 + id) * RECORD);
        CHECK(pwrite(file, rec, record_len, at) == RECORD, "pwrite");
    }
    return NULL;
}

int main(void)
{
    char path[] = "/tmp/rrc-fortified-XXXXXX";
    file = mkstemp(path);
    CHECK(file >= 0, "mkstemp");
    unlink(path);
    pthread_t t[2];
    for (long i = 0; i < 2; i++)
        PCHECK(pthread_create(&t[i], NULL, writer, (void *)i));
    for (int i = 0; i < 2; i++)
        PCHECK(pthread_join(t[i], NULL));

    uint64_t hash = 0;
    char rec[RECORD];
    for (long i = 0; i < 2 * RECORDS; i++) {
        CHECK(pread(file, rec, record_len, (off_t)(i * RECORD)) == RECORD, "pread");
        hash = hash * 31 + fnv1a(rec, sizeof rec);
    }
    printf("records %d, hash %016llx\n", 2 * RECORDS, (unsigned long long)hash);

    int p[2], s[2];
    CHECK(pipe(p) == 0, "pipe");
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0, "socketpair");
    for (int round = 0; round < 50; round++) {
        char msg[RECORD] = {0};
        int n = snprintf(msg, sizeof msg, "%d %ld", round, now_ns() % 1000003);
        CHECK(write(p[1], msg, (size_t)n) == n, "write pipe");
        CHECK(send(s[1], msg, (size_t)n, 0) == n, "send");
        struct pollfd fds[2] = {{.fd = p[0], .events = POLLIN}, {.fd = s[0], .events = POLLIN}};
        nfds_t nfds = (nfds_t)(record_len / RECORD) + 1;
        CHECK(poll(fds, nfds, 1000) == 2, "poll");
        char a[RECORD] = {0}, b[RECORD] = {0};
        CHECK(read(p[0], a, record_len - 1) == n, "read");
        CHECK(recv(s[0], b, record_len - 1, 0) == n, "recv");
        CHECK(strcmp(a, b) == 0, "the pipe and the socket carry the same bytes");
        hash = hash * 31 + fnv1a(a, sizeof a);
    }
    printf("messages 50, hash %016llx\n", (unsigned long long)hash);
    return 0;
}
