/*
 * mem.h - giving freed memory back to the system.
 */
#ifndef LEDGER_UTIL_MEM_H
#define LEDGER_UTIL_MEM_H

/* malloc_trim(0), one caller at a time. */
void mem_trim(void);

#endif
