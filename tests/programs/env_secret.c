/* Reads a secret from its environment and prints only a checksum of it,
 * so the secret itself never reaches its output (or a trace's record of
 * that output). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
    const char *secret = getenv("RRC_TEST_SECRET");
    unsigned sum = 0;
    if (!secret) {
        printf("env_secret: no secret\n");
        return 1;
    }
    for (const char *p = secret; *p; p++)
        sum = sum * 31 + (unsigned char)*p;
    printf("env_secret: %zu bytes, checksum %u\n", strlen(secret), sum);
    return 0;
}
