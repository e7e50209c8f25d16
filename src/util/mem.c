/*
 * mem.c - giving freed memory back to the system (mem.h).
 */
#include <malloc.h>
#include <pthread.h>

#include "mem.h"

/* One trim at a time: glibc's malloc_trim sets its allocator up on first
 * use without a lock when the process never called glibc's malloc, as
 * under AddressSanitizer, whose allocator stands in for it. Two committers
 * going idle together then walked an arena half set up (a SEGV in mtrim,
 * seen in CI). */
static pthread_mutex_t trim_lock = PTHREAD_MUTEX_INITIALIZER;

void mem_trim(void)
{
    pthread_mutex_lock(&trim_lock);
    malloc_trim(0);
    pthread_mutex_unlock(&trim_lock);
}
