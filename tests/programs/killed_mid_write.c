/* A thread writes short lines to stdout without a pause while main,
 * after a moment, ends the process (exit) or replaces it (exec of echo):
 * the writer is killed wherever it is, often inside a write whose bytes
 * are already out. How many lines come out differs from run to run.
 * abort and segv end the process with a signal main causes itself.
 *
 * usage: killed_mid_write exit|exec|abort|segv
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void *writer(void *arg) {
    (void)arg;
    for (;;)
        if (write(1, "x\n", 2) != 2) abort();
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t;
    pthread_create(&t, NULL, writer, NULL);
    usleep(2000);
    const char *how = argc > 1 ? argv[1] : "exit";
    if (!strcmp(how, "exec"))
        execl("/bin/echo", "echo", "exec'd", (char *)0);
    if (!strcmp(how, "abort"))
        abort();
    if (!strcmp(how, "segv")) {
        volatile uintptr_t nowhere = 8;
        *(volatile int *)nowhere = 1;
    }
    exit(0);
}
