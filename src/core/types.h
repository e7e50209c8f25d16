/*
 * types.h - the shapes the core rules work on.
 *
 * core never sees strings it has to look up: the engine resolves every
 * account id and transfer id of a batch into a slot of the arrays below
 * before calling core_apply_batch(). The store fills the slots from
 * PostgreSQL and writes back what core produced.
 */
#ifndef LEDGER_CORE_TYPES_H
#define LEDGER_CORE_TYPES_H

#include <stdbool.h>
#include <stdint.h>

#include "amount.h"
#include "cost.h"
#include "status.h"
#include "validate.h"

/* SPEC section 3: one batch request carries at most this many transfers. */
#define BATCH_TRANSFERS_MAX 8190
/* SPEC section 3: a request body above this size is refused unread. */
#define BODY_BYTES_MAX (16u * 1024u * 1024u)

_Static_assert(BATCH_TRANSFERS_MAX == 8190, "SPEC section 3 batch limit");
_Static_assert(BODY_BYTES_MAX == 16777216u, "SPEC section 3 body limit");

/* Longest timeout of a pending transfer: ten years, so that now + timeout
 * never leaves int64 microseconds. */
#define TIMEOUT_S_MAX 315360000

/* "No entry yet": effective_at of an account that has never changed; also
 * "no deadline" for a pending transfer. */
#define TIME_NONE INT64_MIN

/* Cost currencies one account may track (SPEC section 5). */
#define COST_CURRENCIES_MAX 8

/* Mean acquisition cost per cost currency, scaled by 10^18 (cost.h). The
 * currencies are unique, an account's in the order of its cost_currencies,
 * a unit_cost's sorted; n = 0 when nothing is tracked. */
struct core_cost {
    int n;
    char currency[COST_CURRENCIES_MAX][CURRENCY_LEN_MAX + 1];
    i128 value[COST_CURRENCIES_MAX];
};

/* An account as locked and loaded for one batch, then updated in place. */
struct core_account {
    int64_t id; /* store's internal id, > 0 */
    char currency[CURRENCY_LEN_MAX + 1];
    bool min_unbounded; /* min_balance null: issuer / world account */
    i128 min_balance;
    i128 balance;
    i128 pending_out;
    i128 pending_in;
    int64_t seq;               /* entries so far; the next entry gets seq + 1 */
    int64_t last_effective_us; /* effective_at of entry #seq, or TIME_NONE */
    struct core_cost avg_cost; /* tracked currencies and their current means */
    bool touched;              /* changed by this batch: the store writes it back */
};

enum transfer_state {
    TRANSFER_POSTED = 1,
    TRANSFER_PENDING = 2,
    TRANSFER_VOIDED = 3,
    TRANSFER_EXPIRED = 4,
};

/* A transfer known to the batch: loaded from the journal or created by it. */
struct core_transfer {
    int64_t id;                       /* store's internal id; 0 until the store has inserted it */
    bool exists;                      /* in the journal, or created earlier in this batch */
    bool created;                     /* created by this batch: the store inserts it */
    int64_t from_account, to_account; /* internal account ids */
    i128 amount;
    char currency[CURRENCY_LEN_MAX + 1];
    bool pending;
    enum transfer_state state;
    int64_t from_seq, to_seq;
    i128 from_balance, to_balance; /* balances right after it */
    int64_t created_us, effective_us;

    /* Pending transfers only. */
    int64_t timeout_s;          /* 0: none */
    int64_t deadline_us;        /* TIME_NONE: never expires */
    struct core_cost unit_cost; /* applied to the credited account on post */
    bool settled;               /* posted, voided or expired: the settle_ fields hold */
    i128 posted_amount;
    int64_t settle_from_seq, settle_to_seq;
    i128 settle_from_balance, settle_to_balance;
    int64_t settled_us;
    bool pending_dirty; /* its pending state changed in this batch */
};

/* "posted", "pending", "voided", "expired": the API's status and the
 * store's state column. */
const char *transfer_state_name(enum transfer_state s);
/* The inverse of transfer_state_name; false for any other text. */
bool transfer_state_from_name(const char *name, enum transfer_state *out);

enum entry_kind {
    ENTRY_POSTED = 1,
    ENTRY_PENDING = 2,
    ENTRY_POST_PENDING = 3,
    ENTRY_VOID_PENDING = 4,
    ENTRY_EXPIRE_PENDING = 5,
};

/* "posted", "pending", "post_pending", ...: the API's and the journal's name. */
const char *entry_kind_name(enum entry_kind k);

/* One change of one account's state. */
struct core_entry {
    struct core_cost avg_cost; /* after the change; n = 0 when not tracked */
    int account;               /* slot in core_batch.accounts */
    int transfer;              /* slot in core_batch.transfers */
    int64_t seq;
    enum entry_kind kind;
    i128 amount;         /* signed change of balance */
    i128 pending_change; /* signed change of pending_out (debit side) or pending_in */
    i128 balance, pending_out, pending_in; /* after the change */
    int64_t effective_us, created_us;
};

enum op_kind {
    OP_TRANSFER = 0, /* create a transfer, posted or pending */
    OP_POST = 1,     /* post a pending transfer, all (has_amount false) or amount */
    OP_VOID = 2,     /* release a pending transfer */
    OP_EXPIRE = 3,   /* release a pending transfer past its deadline (sweeper) */
};

/* One transfer of a request, as parsed by the HTTP layer and resolved by
 * the engine. The outputs are status, replayed and *result. For post, void
 * and expire, transfer is the pending transfer and from/to are its
 * accounts. unit_cost and result point to the caller's memory: an op
 * waits in the engine's queue, and only a few carry a unit_cost while
 * every op needs its result only from its batch to its answer, so neither
 * is carried inline by every queued op. */
struct core_op {
    enum op_kind kind;
    int transfer;        /* slot in core_batch.transfers */
    const char *from_id; /* client's ids, compared for same_account */
    const char *to_id;
    int from, to; /* slots in core_batch.accounts; -1: no such account */
    enum amount_parse_result amount_parse;
    i128 amount;
    bool has_currency;
    char currency[CURRENCY_LEN_MAX + 1];
    bool pending;
    int64_t timeout_s;                 /* pending only; 0: none */
    bool has_amount;                   /* post: false posts the whole reservation */
    const struct core_cost *unit_cost; /* NULL: none */
    bool has_expect_from_seq, has_expect_to_seq;
    int64_t expect_from_seq, expect_to_seq;
    bool has_effective;
    int64_t effective_us;

    enum status status;
    bool replayed;
    struct core_transfer *result; /* on STATUS_OK: the transfer right after this op */
};

/* A client request: a single transfer or a batch, atomic or not. */
struct core_request {
    int first_op;
    int n_ops;
    bool atomic;
};

/* Saved state to roll back a failed atomic request. */
struct core_undo {
    bool is_account;
    int slot;
    union {
        struct core_account account;
        struct core_transfer transfer;
    } saved;
};

/* Everything one call of core_apply_batch reads and writes. The caller
 * owns all arrays; capacities: entries >= 2 * n_ops, undo >= 3 * n_ops.
 * Every slot of transfers starts zeroed or loaded; deadline_us of a loaded
 * pending transfer is TIME_NONE when it has no timeout. */
struct core_batch {
    struct core_account *accounts;
    int n_accounts;
    struct core_transfer *transfers;
    int n_transfers;
    struct core_op *ops;
    int n_ops;
    struct core_request *requests;
    int n_requests;
    struct core_entry *entries;
    int n_entries;
    struct core_undo *undo;
    int64_t now_us; /* commit time: created_at and the default effective_at */
};

#endif
