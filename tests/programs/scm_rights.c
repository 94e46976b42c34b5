/*
 * Descriptor passing between processes, as nginx's master does with its
 * workers: the parent sends the write end of a pipe to a forked child
 * over a socketpair (SCM_RIGHTS), once with sendmsg and once with
 * sendmmsg (received with recvmsg and recvmmsg); the child writes a line
 * into each and opens another file, whose number shows that the received
 * descriptors took their slots; the parent prints what came through the
 * pipe.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

/* One message of one byte, with room for one descriptor in its control
 * buffer. */
struct one {
    char byte;
    struct iovec iov;
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
};

static void one_message(struct one *o, struct msghdr *msg, char byte)
{
    memset(o, 0, sizeof *o);
    o->byte = byte;
    o->iov.iov_base = &o->byte;
    o->iov.iov_len = 1;
    memset(msg, 0, sizeof *msg);
    msg->msg_iov = &o->iov;
    msg->msg_iovlen = 1;
    msg->msg_control = o->control.buf;
    msg->msg_controllen = sizeof o->control.buf;
}

static void put_fd(struct msghdr *msg, int fd)
{
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
}

static int take_fd(struct msghdr *msg, const char *call)
{
    struct cmsghdr *c = CMSG_FIRSTHDR(msg);
    CHECK(c && c->cmsg_type == SCM_RIGHTS, call);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static void send_fd(int sock, int fd)
{
    struct one o;
    struct msghdr msg;
    one_message(&o, &msg, 'f');
    put_fd(&msg, fd);
    CHECK(sendmsg(sock, &msg, 0) == 1, "sendmsg");
}

static void send_fd_mmsg(int sock, int fd)
{
    struct one o;
    struct mmsghdr m = {0};
    one_message(&o, &m.msg_hdr, 'm');
    put_fd(&m.msg_hdr, fd);
    CHECK(sendmmsg(sock, &m, 1, 0) == 1, "sendmmsg");
}

static int receive_fd(int sock)
{
    struct one o;
    struct msghdr msg;
    one_message(&o, &msg, 0);
    CHECK(recvmsg(sock, &msg, MSG_CMSG_CLOEXEC) == 1, "recvmsg");
    return take_fd(&msg, "no descriptor received by recvmsg");
}

static int receive_fd_mmsg(int sock)
{
    struct one o;
    struct mmsghdr m = {0};
    one_message(&o, &m.msg_hdr, 0);
    CHECK(recvmmsg(sock, &m, 1, 0, NULL) == 1, "recvmmsg");
    CHECK(m.msg_len == 1 && o.byte == 'm', "recvmmsg data");
    return take_fd(&m.msg_hdr, "no descriptor received by recvmmsg");
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
        int fd2 = receive_fd_mmsg(sv[1]);
        static const char line[] = "hello through a passed descriptor\n";
        static const char line2[] = "and through one passed by sendmmsg\n";
        CHECK(write(fd, line, sizeof line - 1) == (ssize_t)(sizeof line - 1), "write");
        CHECK(write(fd2, line2, sizeof line2 - 1) == (ssize_t)(sizeof line2 - 1), "write");
        int next = open("/dev/null", O_RDONLY);
        close(fd);
        close(fd2);
        printf("child: received descriptors %d and %d, then opened %d\n", fd, fd2, next);
        fflush(stdout);
        _exit(0);
    }
    close(sv[1]);
    send_fd(sv[0], pipefd[1]);
    send_fd_mmsg(sv[0], pipefd[1]);
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
