/*
 * System V shared memory and semaphores made by the program: a private
 * segment attached twice (one write seen through both), detached,
 * attached again over a private mapping with SHM_REMAP (the bytes are
 * still there), written by a fork child (seen by the parent), its
 * description read with IPC_STAT; a semaphore set's values read with
 * GETALL. Replay must make the segment again, not emulate it.
 */
#define _GNU_SOURCE
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"

#define SIZE (3 * 4096)

int main(void)
{
    int id = shmget(IPC_PRIVATE, SIZE, 0600);
    CHECK(id >= 0, "shmget");
    char *a = shmat(id, NULL, 0);
    char *b = shmat(id, NULL, 0);
    CHECK(a != (void *)-1 && b != (void *)-1, "shmat");
    strcpy(a + 100, "through a");
    printf("b sees: %s\n", b + 100);
    CHECK(shmdt(a) == 0 && shmdt(b) == 0, "shmdt");
    CHECK(mmap(a, SIZE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == a, "mmap");
    a = shmat(id, a, SHM_REMAP);
    CHECK(a != (void *)-1, "shmat SHM_REMAP");
    printf("again: %s\n", a + 100);
    pid_t child = fork();
    CHECK(child >= 0, "fork");
    if (child == 0) {
        strcpy(a + 2 * 4096, "from the child");
        _exit(0);
    }
    int status;
    CHECK(waitpid(child, &status, 0) == child && status == 0, "waitpid");
    printf("parent sees: %s\n", a + 2 * 4096);
    struct shmid_ds ds;
    CHECK(shmctl(id, IPC_STAT, &ds) == 0, "IPC_STAT");
    printf("size %zu, attached %lu\n", (size_t)ds.shm_segsz, (unsigned long)ds.shm_nattch);
    CHECK(shmdt(a) == 0 && shmctl(id, IPC_RMID, NULL) == 0, "remove");

    int sem = semget(IPC_PRIVATE, 3, 0600);
    CHECK(sem >= 0, "semget");
    unsigned short set[3] = {4, 5, 6}, got[3] = {0, 0, 0};
    CHECK(semctl(sem, 0, SETALL, set) == 0, "SETALL");
    CHECK(semctl(sem, 0, GETALL, got) == 0, "GETALL");
    printf("semaphores: %d %d %d\n", got[0], got[1], got[2]);
    CHECK(semctl(sem, 0, IPC_RMID) == 0, "IPC_RMID");
    return 0;
}
