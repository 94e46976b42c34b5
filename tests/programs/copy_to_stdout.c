/* Sends text to stdout with a call that takes its bytes from another
 * descriptor rather than from memory: copy_file_range (what GNU cat does
 * when stdout is a file), sendfile, splice from a file or from a pipe,
 * or tee. The text holds random bytes and clock readings, so every run
 * prints something else.
 *
 * usage: copy_to_stdout copy_file_range|sendfile|splice_file|splice_pipe|tee
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <time.h>
#include <unistd.h>

static char text[8192];
static size_t text_len;

static void make_text(void) {
    for (int line = 0; line < 40; line++) {
        unsigned char r[16];
        struct timespec ts;
        if (getrandom(r, sizeof r, 0) != sizeof r) exit(3);
        clock_gettime(CLOCK_REALTIME, &ts);
        text_len += snprintf(text + text_len, sizeof text - text_len, "line %02d %ld.%09ld ",
                             line, (long)ts.tv_sec, ts.tv_nsec);
        for (int i = 0; i < 16; i++)
            text_len += snprintf(text + text_len, sizeof text - text_len, "%02x", r[i]);
        text[text_len++] = '\n';
    }
}

/* A file holding the text, read from its start. */
static int file_with_text(void) {
    char path[] = "/tmp/rrc-copy-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) exit(3);
    unlink(path);
    if (write(fd, text, text_len) != (ssize_t)text_len) exit(3);
    lseek(fd, 0, SEEK_SET);
    return fd;
}

/* Writes the text into a pipe in pieces, a little apart. */
static void *feed(void *arg) {
    int w = *(int *)arg;
    for (size_t at = 0; at < text_len; at += 500) {
        size_t n = text_len - at < 500 ? text_len - at : 500;
        if (write(w, text + at, n) != (ssize_t)n) exit(3);
        usleep(300);
    }
    close(w);
    return NULL;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) exit(3);
        p += w;
        n -= (size_t)w;
    }
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "copy_file_range";
    make_text();
    printf("%s: begin\n", mode);
    fflush(stdout);
    ssize_t sent = 0, n = 0;
    if (!strcmp(mode, "copy_file_range")) {
        int fd = file_with_text();
        while ((n = copy_file_range(fd, NULL, 1, NULL, (size_t)1 << 30, 0)) > 0) sent += n;
    } else if (!strcmp(mode, "sendfile")) {
        int fd = file_with_text();
        off_t off = 0;
        /* Half from an offset, the rest from the file's position. */
        n = sendfile(1, fd, &off, text_len / 2);
        if (n > 0) {
            sent += n;
            lseek(fd, off, SEEK_SET);
            while ((n = sendfile(1, fd, NULL, 1 << 20)) > 0) sent += n;
        }
    } else if (!strcmp(mode, "splice_file")) {
        int fd = file_with_text();
        loff_t off = 0;
        while ((n = splice(fd, &off, 1, NULL, 1000, 0)) > 0) sent += n;
    } else if (!strcmp(mode, "splice_pipe")) {
        int p[2];
        pthread_t t;
        if (pipe(p)) exit(3);
        pthread_create(&t, NULL, feed, &p[1]);
        while ((n = splice(p[0], NULL, 1, NULL, 1 << 16, 0)) > 0) sent += n;
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "tee")) {
        int p[2];
        if (pipe(p)) exit(3);
        write_all(p[1], text, text_len);
        close(p[1]);
        n = tee(p[0], 1, 1 << 16, 0);
        if (n > 0) {
            sent = n;
            /* The bytes are still in the pipe: print them once more. */
            char buf[8192];
            ssize_t got = read(p[0], buf, sizeof buf);
            if (got > 0) write_all(1, buf, (size_t)got);
        }
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    if (n < 0 && sent == 0) {
        /* Not possible to this stdout (copy_file_range to a pipe, splice
         * and tee to a file): the text is written instead. */
        fprintf(stderr, "%s: %s; written instead\n", mode, strerror(errno));
        write_all(1, text, text_len);
    } else {
        fprintf(stderr, "%s sent %zd bytes\n", mode, sent);
    }
    printf("%s: end\n", mode);
    return 0;
}
