/*
 * token_file.h - reads a bearer token file, the one format ledgerd and
 * ledgerctl share (SPEC section 1).
 *
 * One token per line; blank lines and lines whose first non-blank
 * character is '#' are ignored; blanks and a CR around a token are
 * trimmed; a UTF-8 byte-order mark at the start of the file is not part
 * of its first line. A line that could hold no token an HTTP header can
 * carry (longer than TOKEN_LEN_MAX, or with a control character) makes
 * the whole file refused, rather than a token that is not the one
 * written.
 */
#ifndef LEDGER_UTIL_TOKEN_FILE_H
#define LEDGER_UTIL_TOKEN_FILE_H

#include <stddef.h>

#define TOKEN_LEN_MAX 4096

/* Returns how many tokens path holds (0 or more), each in *tokens (free
 * with token_file_free), or -1 with a message in err. */
int token_file_read(const char *path, char ***tokens, char *err, size_t errlen);
void token_file_free(char **tokens, int n);

#endif
