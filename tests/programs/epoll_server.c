/*
 * A small multithreaded epoll server for the server record/replay tests.
 *
 *   epoll_server PORT [WORKERS [worker-epoll]]
 *
 * The main thread is the acceptor: one epoll instance watching the
 * nonblocking listening socket on 127.0.0.1:PORT, a timerfd ticking
 * every 10 ms and a signalfd for SIGTERM and SIGINT. Each accepted
 * connection (nonblocking) is handed to a worker thread, round robin,
 * through that worker's pipe; every worker runs its own epoll instance
 * over its pipe and its connections. The acceptor creates the workers'
 * epoll instances before starting them, or, with `worker-epoll`, each
 * worker creates its own as it starts (concurrently with the acceptor
 * creating descriptors). The line protocol:
 *
 *   ECHO text   ->  "text"
 *   TIME        ->  "TIME sec.nsec"   (clock_gettime, CLOCK_MONOTONIC)
 *   RAND        ->  "RAND hex"        (getrandom, 8 bytes)
 *   STATS       ->  "STATS n"         (commands so far, all workers:
 *                                      a mutex-protected counter)
 *   QUIT        ->  "BYE", then the server closes the connection
 *   other       ->  "ERR unknown command"
 *
 * Replies go out with send(); the hand-over pipes use write(). On
 * SIGTERM the acceptor tells every worker to stop (a -1 through its
 * pipe), joins them and prints a summary on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_WORKERS 4
#define MAX_CONNS 256
#define LINE_MAX_LEN 1024

struct conn {
    int fd;
    size_t len;
    char buf[LINE_MAX_LEN];
};

struct worker {
    int id;
    pthread_t thread;
    int pipe_rd, pipe_wr;
    int epfd;
    struct conn *conns[MAX_CONNS];
    /* Per-worker figures, read by main after the join. */
    long connections, commands, bytes_out;
};

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static long total_commands;

static long count_command(void)
{
    PCHECK(pthread_mutex_lock(&stats_lock));
    long n = ++total_commands;
    PCHECK(pthread_mutex_unlock(&stats_lock));
    return n;
}

/* Sends all of buf, waiting for room when the socket is full. */
static int send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (poll(&p, 1, 1000) < 0 && errno != EINTR)
                return -1;
            continue;
        }
        if (n < 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static void close_conn(struct worker *w, int slot)
{
    struct conn *c = w->conns[slot];
    CHECK(epoll_ctl(w->epfd, EPOLL_CTL_DEL, c->fd, NULL) == 0, "epoll_ctl DEL");
    CHECK(close(c->fd) == 0, "close conn");
    free(c);
    w->conns[slot] = NULL;
}

/* Runs one command line; returns 0 to keep the connection, 1 to close it. */
static int run_command(struct worker *w, struct conn *c, const char *line)
{
    char reply[LINE_MAX_LEN + 64];
    int quit = 0;
    long n = count_command();
    w->commands++;
    if (strncmp(line, "ECHO ", 5) == 0) {
        snprintf(reply, sizeof reply, "%s\n", line + 5);
    } else if (strcmp(line, "TIME") == 0) {
        struct timespec ts;
        CHECK(clock_gettime(CLOCK_MONOTONIC, &ts) == 0, "clock_gettime");
        snprintf(reply, sizeof reply, "TIME %ld.%09ld\n", (long)ts.tv_sec, ts.tv_nsec);
    } else if (strcmp(line, "RAND") == 0) {
        unsigned char r[8];
        CHECK(getrandom(r, sizeof r, 0) == (ssize_t)sizeof r, "getrandom");
        int at = snprintf(reply, sizeof reply, "RAND ");
        for (size_t i = 0; i < sizeof r; i++)
            at += snprintf(reply + at, sizeof reply - (size_t)at, "%02x", r[i]);
        snprintf(reply + at, sizeof reply - (size_t)at, "\n");
    } else if (strcmp(line, "STATS") == 0) {
        snprintf(reply, sizeof reply, "STATS %ld\n", n);
    } else if (strcmp(line, "QUIT") == 0) {
        snprintf(reply, sizeof reply, "BYE\n");
        quit = 1;
    } else {
        snprintf(reply, sizeof reply, "ERR unknown command\n");
    }
    size_t len = strlen(reply);
    if (send_all(c->fd, reply, len) != 0)
        return 1;
    w->bytes_out += (long)len;
    return quit;
}

/* Reads what the connection has and runs every complete line. */
static void serve(struct worker *w, int slot)
{
    struct conn *c = w->conns[slot];
    for (;;) {
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            close_conn(w, slot);
            return;
        }
        c->len += (size_t)n;
        char *start = c->buf;
        char *nl;
        while ((nl = memchr(start, '\n', c->len - (size_t)(start - c->buf))) != NULL) {
            *nl = '\0';
            if (nl > start && nl[-1] == '\r')
                nl[-1] = '\0';
            if (run_command(w, c, start)) {
                close_conn(w, slot);
                return;
            }
            start = nl + 1;
        }
        c->len -= (size_t)(start - c->buf);
        memmove(c->buf, start, c->len);
        if (c->len == sizeof c->buf) {
            /* A line longer than the buffer: drop the connection. */
            close_conn(w, slot);
            return;
        }
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    if (w->epfd < 0) {
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        CHECK(w->epfd >= 0, "epoll_create1");
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)-1};
    CHECK(epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->pipe_rd, &ev) == 0, "epoll_ctl pipe");
    int running = 1;
    while (running) {
        struct epoll_event events[16];
        int n = epoll_wait(w->epfd, events, 16, -1);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0, "epoll_wait worker");
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == (uint64_t)-1) {
                int fd;
                ssize_t got = read(w->pipe_rd, &fd, sizeof fd);
                CHECK(got == (ssize_t)sizeof fd, "read hand-over pipe");
                if (fd < 0) {
                    running = 0;
                    continue;
                }
                int slot = 0;
                while (slot < MAX_CONNS && w->conns[slot] != NULL)
                    slot++;
                if (slot == MAX_CONNS) {
                    close(fd);
                    continue;
                }
                struct conn *c = calloc(1, sizeof *c);
                CHECK(c != NULL, "calloc");
                c->fd = fd;
                w->conns[slot] = c;
                w->connections++;
                struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP,
                                          .data.u64 = (uint64_t)slot};
                CHECK(epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &cev) == 0, "epoll_ctl conn");
            } else {
                int slot = (int)events[i].data.u64;
                if (w->conns[slot] != NULL)
                    serve(w, slot);
            }
        }
    }
    for (int slot = 0; slot < MAX_CONNS; slot++)
        if (w->conns[slot] != NULL)
            close_conn(w, slot);
    CHECK(close(w->epfd) == 0, "close epoll");
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: epoll_server PORT [WORKERS [worker-epoll]]\n");
        return 2;
    }
    int port = atoi(argv[1]);
    int nworkers = argc > 2 ? atoi(argv[2]) : 3;
    int worker_epoll = argc > 3 && strcmp(argv[3], "worker-epoll") == 0;
    if (nworkers < 1 || nworkers > MAX_WORKERS) {
        fprintf(stderr, "epoll_server: 1 to %d workers\n", MAX_WORKERS);
        return 2;
    }

    /* Block the stop signals everywhere (workers inherit the mask): the
     * acceptor takes them from a signalfd. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    PCHECK(pthread_sigmask(SIG_BLOCK, &stop, NULL));
    int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    CHECK(sfd >= 0, "signalfd");

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0, "socket");
    int one = 1;
    CHECK(setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0, "setsockopt");
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(lfd, (struct sockaddr *)&addr, sizeof addr) == 0, "bind");
    CHECK(listen(lfd, 64) == 0, "listen");

    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    CHECK(tfd >= 0, "timerfd_create");
    struct itimerspec tick = {.it_interval = {0, 10000000}, .it_value = {0, 10000000}};
    CHECK(timerfd_settime(tfd, 0, &tick, NULL) == 0, "timerfd_settime");

    struct worker workers[MAX_WORKERS];
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < nworkers; i++) {
        int p[2];
        CHECK(pipe2(p, O_CLOEXEC) == 0, "pipe2");
        workers[i].id = i;
        workers[i].pipe_rd = p[0];
        workers[i].pipe_wr = p[1];
        workers[i].epfd = -1;
        if (!worker_epoll) {
            workers[i].epfd = epoll_create1(EPOLL_CLOEXEC);
            CHECK(workers[i].epfd >= 0, "epoll_create1");
        }
        PCHECK(pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]));
    }

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    CHECK(epfd >= 0, "epoll_create1");
    int watched[3] = {lfd, tfd, sfd};
    for (int i = 0; i < 3; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = watched[i]};
        CHECK(epoll_ctl(epfd, EPOLL_CTL_ADD, watched[i], &ev) == 0, "epoll_ctl");
    }

    printf("epoll_server: listening on 127.0.0.1:%d with %d workers%s\n", port, nworkers,
           worker_epoll ? " (each creating its epoll instance)" : "");
    fflush(stdout);

    long accepted = 0, ticks = 0;
    int next = 0, stop_sig = 0;
    while (!stop_sig) {
        struct epoll_event events[8];
        int n = epoll_wait(epfd, events, 8, -1);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK(n >= 0, "epoll_wait");
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                for (;;) {
                    int cfd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        break;
                    if (cfd < 0 && (errno == EINTR || errno == ECONNABORTED))
                        continue;
                    CHECK(cfd >= 0, "accept4");
                    accepted++;
                    CHECK(write(workers[next].pipe_wr, &cfd, sizeof cfd) == (ssize_t)sizeof cfd,
                          "write hand-over pipe");
                    next = (next + 1) % nworkers;
                }
            } else if (fd == tfd) {
                uint64_t expirations;
                ssize_t got = read(tfd, &expirations, sizeof expirations);
                if (got == (ssize_t)sizeof expirations)
                    ticks += (long)expirations;
            } else if (fd == sfd) {
                struct signalfd_siginfo si;
                if (read(sfd, &si, sizeof si) == (ssize_t)sizeof si)
                    stop_sig = (int)si.ssi_signo;
            }
        }
    }

    int quit = -1;
    for (int i = 0; i < nworkers; i++)
        CHECK(write(workers[i].pipe_wr, &quit, sizeof quit) == (ssize_t)sizeof quit,
              "write stop");
    long conns = 0, bytes = 0;
    for (int i = 0; i < nworkers; i++) {
        PCHECK(pthread_join(workers[i].thread, NULL));
        conns += workers[i].connections;
        bytes += workers[i].bytes_out;
    }
    printf("epoll_server: stopped by %s after %ld timer ticks\n",
           stop_sig == SIGTERM ? "SIGTERM" : "SIGINT", ticks);
    for (int i = 0; i < nworkers; i++)
        printf("epoll_server: worker %d: %ld connections, %ld commands, %ld bytes sent\n", i,
               workers[i].connections, workers[i].commands, workers[i].bytes_out);
    printf("epoll_server: total: %ld accepted, %ld served, %ld commands, %ld bytes sent\n",
           accepted, conns, total_commands, bytes);
    printf("epoll_server: ticked: %s\n", ticks > 0 ? "yes" : "no");
    return 0;
}
