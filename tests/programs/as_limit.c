/*
 * Caps its own address space at 200 MB, as vsftpd does, reads the limit
 * back, and maps memory: natively the mapping succeeds, and it must
 * while recorded too (rrc's own mappings must not count against it).
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <sys/resource.h>

#include "common.h"

int main(void)
{
    struct rlimit r = {200UL << 20, 200UL << 20};
    CHECK(setrlimit(RLIMIT_AS, &r) == 0, "setrlimit");
    struct rlimit back;
    CHECK(getrlimit(RLIMIT_AS, &back) == 0, "getrlimit");
    printf("limit %lu %lu\n", (unsigned long)back.rlim_cur, (unsigned long)back.rlim_max);
    void *p = mmap(NULL, 12288, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    printf("mmap %s\n", p == MAP_FAILED ? "failed" : "ok");
    return 0;
}
