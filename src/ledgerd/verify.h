/*
 * verify.h - `ledgerd verify`: re-derive every balance from the journal
 * and check the invariants of SPEC section 6.
 */
#ifndef LEDGER_LEDGERD_VERIFY_H
#define LEDGER_LEDGERD_VERIFY_H

/* db: a connection string, or NULL to use (and if needed start) the
 * embedded cluster in data_dir. Returns the process exit code: 0 when
 * every invariant holds, 1 when any is violated, 2 when it could not run. */
int verify_main(const char *db, const char *data_dir);

#endif
