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

/* Several processes may use one data folder (ledgerd serving, ledgerd
 * verify): the one that holds an exclusive flock on the folder owns its
 * postgres, which it starts as its child, supervises and stops; the
 * others use it while its owner lives. The kernel drops the lock however
 * its holder ends, so a postgres left running by a ledgerd that was
 * killed has no owner: the next process to take the lock stops it and
 * starts its own, and a process using another's cluster takes it over
 * when that owner is gone. */
struct pg_embedded {
    char data_dir[4096]; /* absolute */
    char bindir[4096];
    char conninfo[4400];
    pid_t pid; /* 0 when another process owns the running cluster */
    bool owner;
    int lock_fd; /* the folder, flocked, while owner */
};

/* Creates the cluster if needed and starts it (or uses the one another
 * process owns). Returns 0 with pg->conninfo ready to use; 1 if a stop
 * signal came meanwhile (SIGTERM, SIGINT or SIGHUP, left pending); -1
 * with a logged reason. pg is zeroed before the first call. */
int pg_embedded_start(struct pg_embedded *pg, const char *data_dir);
/* Fast shutdown of a cluster this process started; waits for it. */
void pg_embedded_stop(struct pg_embedded *pg);
/* True while the child postgres is running, or, for another process's
 * cluster, while that process lives. */
bool pg_embedded_alive(struct pg_embedded *pg);

#endif
