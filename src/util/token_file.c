/*
 * token_file.c - see token_file.h.
 */
#include "token_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chars.h"

void token_file_free(char **tokens, int n)
{
    for (int i = 0; i < n; i++)
        free(tokens[i]);
    free(tokens);
}

int token_file_read(const char *path, char ***tokens, char *err, size_t errlen)
{
    *tokens = NULL;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "could not open token file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n = 0, line_no = 0;
    bool ok = true;
    while (ok && (got = getline(&line, &cap, f)) >= 0) {
        char *s = line, *e = line + got;
        if (++line_no == 1 && got >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
            s += 3;
        while (s < e && chars_blank(*s))
            s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || chars_blank(e[-1])))
            e--;
        if (s == e || *s == '#')
            continue;
        size_t len = (size_t)(e - s);
        for (size_t i = 0; ok && i < len; i++)
            if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
                snprintf(err, errlen, "token file \"%s\", line %d: a control character", path,
                         line_no);
                ok = false;
            }
        if (ok && len > TOKEN_LEN_MAX) {
            snprintf(err, errlen, "token file \"%s\", line %d: longer than %d bytes", path, line_no,
                     TOKEN_LEN_MAX);
            ok = false;
        }
        char **grown = ok ? realloc(*tokens, (size_t)(n + 1) * sizeof **tokens) : NULL;
        char *token = grown ? strndup(s, len) : NULL;
        if (ok && token == NULL) {
            snprintf(err, errlen, "token file \"%s\": out of memory", path);
            ok = false;
        }
        if (grown)
            *tokens = grown;
        if (token)
            (*tokens)[n++] = token;
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "could not read token file \"%s\": %s", path, strerror(errno));
        ok = false;
    }
    free(line);
    fclose(f);
    if (!ok) {
        token_file_free(*tokens, n);
        *tokens = NULL;
        return -1;
    }
    return n;
}
