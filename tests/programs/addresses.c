/*
 * Prints where its stack, its thread's errno and its first allocation
 * are: addresses that depend on what the loader and the kernel placed
 * before main, among them the path of the preloaded shim. A replay must
 * print the recorded ones.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    int local = 0;
    void *heap = malloc(24);
    printf("stack %p errno %p heap %p\n", (void *)&local, (void *)&errno, heap);
    free(heap);
    return local;
}
