/*
 * memhw_freestanding.c -- the few <string.h> functions the core uses, for a freestanding
 * build without a C library (the Cortex-M4 size build). A board with newlib or picolibc
 * links theirs instead.
 */
#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    const unsigned char *s = (const unsigned char *)src;
    if (d < s) {
        while (n--) {
            *d++ = *s++;
        }
    } else {
        while (n--) {
            d[n] = s[n];
        }
    }
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = (unsigned char *)dst;
    while (n--) {
        *d++ = (unsigned char)c;
    }
    return dst;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n]) {
        n++;
    }
    return n;
}

char *strchr(const char *s, int c)
{
    for (;; s++) {
        if (*s == (char)c) {
            return (char *)s;
        }
        if (!*s) {
            return NULL;
        }
    }
}

/*
 * Entry of the size build: the two first words of a Cortex-M vector table (initial stack
 * pointer, reset handler); a real board's start-up code also clears .bss and sets up clocks.
 */
#include <stdint.h>

void memhw_example_main(void);
extern uint64_t memhw_example_stack[];

void _start(void);

__attribute__((section(".vectors"), used)) const uintptr_t memhw_vectors[2] = {
    (uintptr_t)&memhw_example_stack[0], (uintptr_t)&_start,
};

void _start(void)
{
    (void)*(volatile const uintptr_t *)&memhw_vectors[0]; /* keeps the table (and the stack) in the image */
    memhw_example_main();
}
