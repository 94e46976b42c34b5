/*
 * Descriptor numbers the kernel reserves when a call starts: a thread
 * blocks in accept() (which takes the lowest free number then), the main
 * thread closes a lower descriptor and connects. accept() returns the
 * number it reserved, not the lowest free one at its return: replay's
 * placeholder for the accepted connection must take that number.
 * Then a relative open, after chdir into a directory it made, of a file
 * it wrote (unchanged, so replay opens it for real: the relative path
 * must lead to it from the replayed working directory), and sendfile of
 * that file to stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

static int listener;
static int accepted = -1;

static void *acceptor(void *arg)
{
    (void)arg;
    accepted = accept(listener, NULL, NULL);
    return NULL;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener >= 0, "socket");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK(bind(listener, (struct sockaddr *)&addr, sizeof addr) == 0, "bind");
    CHECK(listen(listener, 4) == 0, "listen");
    socklen_t len = sizeof addr;
    CHECK(getsockname(listener, (struct sockaddr *)&addr, &len) == 0, "getsockname");

    int spare = open("/dev/null", O_RDONLY);
    CHECK(spare >= 0, "open /dev/null");
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, acceptor, NULL));
    usleep(20000); /* the acceptor is blocked, its number reserved */
    close(spare);
    int client = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(client >= 0, "socket");
    CHECK(connect(client, (struct sockaddr *)&addr, sizeof addr) == 0, "connect");
    PCHECK(pthread_join(t, NULL));
    printf("closed %d, client %d, accepted %d\n", spare, client, accepted);

    CHECK(mkdir("docs", 0755) == 0, "mkdir docs");
    int w = open("docs/page.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    CHECK(w >= 0, "create docs/page.txt");
    static const char page[] = "rrc page: sent to stdout with sendfile\n";
    CHECK(write(w, page, sizeof page - 1) == (ssize_t)(sizeof page - 1), "write page");
    close(w);
    CHECK(chdir("docs") == 0, "chdir docs");
    int f = open("page.txt", O_RDONLY);
    CHECK(f >= 0, "open page.txt");
    char head[16] = {0};
    CHECK(read(f, head, 8) == 8, "read");
    printf("page starts %s\n", head);
    off_t off = 0;
    ssize_t sent = sendfile(1, f, &off, 4096);
    printf("\nsendfile sent %zd\n", sent);
    return 0;
}
