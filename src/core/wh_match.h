/*
 * wh_match.h -- one configured value matched against a string: exact, or
 * a PCRE2 regular expression written as nginx writes them ("~re", "~*re"
 * caseless), compiled once at load (with JIT where the platform has it).
 */
#ifndef WH_MATCH_H
#define WH_MATCH_H

#include "wh_core.h"

typedef struct {
    const char *text;           /* as configured (not owned); NULL: no condition */
    void *re;                   /* pcre2_code, NULL: exact */
    void *md;                   /* its pcre2_match_data, reused by each match */
    unsigned caseless:1;        /* an exact value compared caselessly */
} wh_match_t;

/* Compiles text into m; caseless: how an exact value compares (a host
 * name does, a path does not). WH_ERROR with err[] saying why (PCRE2's
 * message and the offset in the pattern). */
int wh_match_compile(wh_match_t *m, const char *text, int caseless, char *err, size_t errlen);

/* 1: s[0..len) matches (an unset m matches everything), 0: it does not. */
int wh_match(const wh_match_t *m, const char *s, size_t len);

void wh_match_free(wh_match_t *m);

#endif
