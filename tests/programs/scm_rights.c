/*
 * Descriptor passing between processes, as nginx's master does with its
 * workers: the parent sends the write end of a pipe to a forked child
 * over a socketpair (SCM_RIGHTS); the child writes a line into it and
 * opens another file, whose number shows that the received descriptor
 * took its slot; the parent prints what came through the pipe.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

static void send_fd(int sock, int fd)
{
    char byte = 'f';
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    CHECK(sendmsg(sock, &msg, 0) == 1, "sendmsg");
}

static int receive_fd(int sock)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg = {0};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    CHECK(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) == 1, "recvmsg");
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS, "no descriptor received");
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

int main(void)
{
    int sv[2], pipefd[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0, "socketpair");
    CHECK(pipe(pipefd) == 0, "pipe");
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        close(sv[0]);
        close(pipefd[0]);
        close(pipefd[1]);
        int fd = receive_fd(sv[1]);
        static const char line[] = "hello through a passed descriptor\n";
        CHECK(write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1), "write");
        int next = open("/dev/null", O_RDONLY);
        close(fd);
        printf("child: received descriptor %d, then opened %d\n", fd, next);
        fflush(stdout);
        _exit(0);
    }
    close(sv[1]);
    send_fd(sv[0], pipefd[1]);
    close(pipefd[1]);
    char buf[128];
    ssize_t n, total = 0;
    while ((n = read(pipefd[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += n;
    buf[total] = 0;
    int status;
    CHECK(waitpid(child, &status, 0) == child, "waitpid");
    printf("parent: pipe said: %s", buf);
    printf("parent: child exited with %d\n", WEXITSTATUS(status));
    return 0;
}
