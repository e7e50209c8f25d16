/*
 * pg_embedded.h - the private PostgreSQL cluster of ledgerd's embedded
 * default: created with initdb on first start, run as a child process on a
 * Unix socket inside its own folder, stopped on shutdown.
 */
#ifndef LEDGER_LEDGERD_PG_EMBEDDED_H
#define LEDGER_LEDGERD_PG_EMBEDDED_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct pg_embedded {
    char data_dir[4096]; /* absolute */
    char bindir[4096];
    char conninfo[4400];
    pid_t pid; /* 0 when a cluster was already running and we only use it */
};

/* Creates the cluster if needed and starts it (or finds it running).
 * Returns 0 with pg->conninfo ready to use; -1 with a logged reason. */
int pg_embedded_start(struct pg_embedded *pg, const char *data_dir);
/* Fast shutdown of a cluster this process started; waits for it. */
void pg_embedded_stop(struct pg_embedded *pg);
/* True while the child postgres is running (always true if not ours). */
bool pg_embedded_alive(struct pg_embedded *pg);

#endif
