/* Small helpers shared by rrc's test programs. */
#ifndef RRC_TEST_COMMON_H
#define RRC_TEST_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bit: a stable hash to print instead of whole buffers. */
static inline uint64_t fnv1a(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline void print_hex(FILE *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        fprintf(out, "%02x", p[i]);
}

/* Exit with a message when a call that must work fails. */
#define CHECK(cond, what)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            perror(what);                                                   \
            exit(99);                                                       \
        }                                                                   \
    } while (0)

/* pthread functions return an error number instead of setting errno. */
#define PCHECK(call)                                                        \
    do {                                                                    \
        int rc_ = (call);                                                   \
        if (rc_ != 0) {                                                     \
            fprintf(stderr, "%s failed: %s\n", #call, strerror(rc_));       \
            exit(99);                                                       \
        }                                                                   \
    } while (0)

#endif
