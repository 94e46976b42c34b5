/* rdtsc in a library loaded with dlopen after the shim's start (built
 * from this file with -DPLUGIN as libtsc_plugin.so, next to the program,
 * which has no rdtsc of its own): rrc patches it when it is mapped, so
 * its reads are recorded even though rdtsc no longer traps the threads.
 * Each native run prints other values. */
#ifdef PLUGIN
#include <stdint.h>
#include <x86intrin.h>

uint64_t plugin_tsc(void)
{
    unsigned aux;
    return __rdtsc() ^ (__rdtscp(&aux) << 7);
}
#else
#define _GNU_SOURCE
#include <dlfcn.h>
#include <libgen.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define THREADS 2
#define ROUNDS 2000

static uint64_t (*tsc)(void);

static void *reader(void *arg)
{
    uint64_t mix = 0;
    struct timespec ts;
    for (int i = 0; i < ROUNDS; i++) {
        /* Clock reads through the shim: after 1,000 the thread leaves
         * the trap, and only the patch makes the plugin's rdtsc fault. */
        clock_gettime(CLOCK_MONOTONIC, &ts);
        mix = mix * 31 + tsc() + (uint64_t)ts.tv_nsec;
    }
    printf("thread %ld: %llu\n", (long)arg, (unsigned long long)(mix % 1000003));
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    char path[4096];
    snprintf(path, sizeof path, "%s/libtsc_plugin.so", dirname(strdup(argv[0])));
    void *lib = dlopen(path, RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    tsc = (uint64_t(*)(void))dlsym(lib, "plugin_tsc");
    if (!tsc) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++) {
        pthread_create(&t[i], NULL, reader, (void *)i);
        pthread_join(t[i], NULL);
    }
    return 0;
}
#endif
