/*
 * A thread blocks in accept() while the main thread opens a file. The
 * kernel takes the accepted descriptor's number when accept starts, so
 * the open skips it (listener 3, accept 4, open 5); replay must hand out
 * the same numbers though its accept returns at once. The main thread
 * then connects to itself to end the accept.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common.h"

static int listener;

static void *acceptor(void *arg)
{
    (void)arg;
    int c = accept(listener, NULL, NULL);
    printf("accepted descriptor %d\n", c);
    CHECK(c >= 0, "accept");
    close(c);
    return NULL;
}

int main(void)
{
    listener = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(listener >= 0, "socket");
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK(bind(listener, (struct sockaddr *)&a, sizeof a) == 0, "bind");
    CHECK(getsockname(listener, (struct sockaddr *)&a, &len) == 0, "getsockname");
    CHECK(listen(listener, 4) == 0, "listen");
    pthread_t t;
    PCHECK(pthread_create(&t, NULL, acceptor, NULL));
    usleep(100000); /* the acceptor is asleep in accept by now */
    int f = open("/dev/null", O_RDONLY);
    printf("opened descriptor %d\n", f);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(connect(c, (struct sockaddr *)&a, sizeof a) == 0, "connect");
    PCHECK(pthread_join(t, NULL));
    printf("connected with descriptor %d\n", c);
    return 0;
}
