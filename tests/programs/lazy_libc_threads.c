/*
 * Threads that each look up a user and a host, format local time and an
 * error message and log to syslog, all at once (a barrier lets them go
 * together), in a locale other than C: glibc loads the name-service
 * configuration, the nscd socket it tries, the time zone, the log socket
 * and the message catalogs on first use, in whichever thread gets there first, and skips
 * nscd in a thread that another thread found it missing for. Replay must
 * make those calls in the same threads. The microseconds printed differ
 * from run to run natively.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <netdb.h>
#include <pthread.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define THREADS 4

static pthread_barrier_t together;

static void *worker(void *arg)
{
    long id = (long)arg;
    pthread_barrier_wait(&together);
    syslog(LOG_DEBUG, "rrc test thread %ld", id);
    struct passwd pw, *found = NULL;
    char buf[2048];
    int pw_rc = getpwuid_r(getuid(), &pw, buf, sizeof buf, &found);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_INET;
    int gai = getaddrinfo("localhost", "80", &hints, &ai);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%H:%M:%S", &tm);
    printf("thread %ld user %s (%d) localhost %d at %s.%06ld: %s\n", id,
           found ? found->pw_name : "?", pw_rc, gai, when, (long)tv.tv_usec,
           strerror(ENOENT + (int)id));
    if (ai)
        freeaddrinfo(ai);
    return NULL;
}

int main(void)
{
    setlocale(LC_ALL, "C.UTF-8");
    pthread_t t[THREADS];
    PCHECK(pthread_barrier_init(&together, NULL, THREADS));
    for (long i = 0; i < THREADS; i++)
        PCHECK(pthread_create(&t[i], NULL, worker, (void *)i));
    for (int i = 0; i < THREADS; i++)
        PCHECK(pthread_join(t[i], NULL));
    return 0;
}
