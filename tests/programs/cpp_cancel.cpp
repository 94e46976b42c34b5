// A C++ worker blocked in read (a buffered call) is cancelled; unwinding
// its stack runs the destructor of an object it holds. Under rrc the read
// is made from the shim's own call site, which the unwinder must be able
// to step through, or the destructor would silently not run.
#include <pthread.h>
#include <unistd.h>
#include <cstdio>

static int pipe_fds[2];

struct Goodbye {
    ~Goodbye() { std::printf("destructor ran\n"); }
};

static void *reader(void *)
{
    Goodbye g;
    for (;;) {
        char c;
        ssize_t n = read(pipe_fds[0], &c, 1);
        std::printf("read %zd\n", n);
    }
    return nullptr;
}

int main()
{
    if (pipe(pipe_fds) != 0)
        return 1;
    pthread_t t;
    pthread_create(&t, nullptr, reader, nullptr);
    if (write(pipe_fds[1], "x", 1) != 1)
        return 1;
    usleep(20000);
    pthread_cancel(t);
    void *result;
    pthread_join(t, &result);
    std::printf("cancelled: %s\n", result == PTHREAD_CANCELED ? "yes" : "no");
    return 0;
}
