/*
 * Makes a 32-bit system call (int 0x80, getpid) from a 64-bit program,
 * after printing a line.
 */
#include <stdio.h>

int main(void)
{
    printf("int80: before\n");
    fflush(stdout);
    long ret = 20; /* __NR_getpid in the 32-bit table */
    __asm__ volatile("int $0x80" : "+a"(ret) : : "memory");
    printf("int80: getpid returned %ld\n", ret);
    return 0;
}
