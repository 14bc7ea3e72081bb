/*
 * string.h -- the declarations the core needs, for a freestanding build without a C
 * library (implemented in ../memhw_freestanding.c). Boards with a C library use theirs.
 */
#ifndef MEMHW_FREESTANDING_STRING_H
#define MEMHW_FREESTANDING_STRING_H

#include <stddef.h>

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
size_t strlen(const char *s);
char *strchr(const char *s, int c);

#endif /* MEMHW_FREESTANDING_STRING_H */
