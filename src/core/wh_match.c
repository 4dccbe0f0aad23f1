/*
 * wh_match.c -- exact or PCRE2 matching of configured values (see
 * wh_match.h).
 *
 * A regular expression is compiled and JIT-compiled in the master while
 * the configuration loads, so a bad one is refused with the file's line and
 * a worker never compiles; its match data is made at the same time and
 * reused, as each worker is one thread and gets its own copy by fork().
 * A pattern is searched for anywhere in the subject, as nginx does: "^"
 * and "$" anchor it.
 */
#include "wh_match.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <strings.h>

int
wh_match_compile(wh_match_t *m, const char *text, int caseless, char *err, size_t errlen)
{
    uint32_t opts = 0;
    const char *pattern;
    int code;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[160];
    pcre2_code *re;

    memset(m, 0, sizeof(*m));
    m->text = text;
    if (text[0] != '~') {
        m->caseless = caseless != 0;
        return WH_OK;
    }
    pattern = text + 1;
    if (pattern[0] == '*') {
        opts |= PCRE2_CASELESS;
        pattern++;
    }
    re = pcre2_compile((PCRE2_SPTR) pattern, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "bad regular expression \"%s\": %s at offset %zu", pattern,
                 (const char *) msg, (size_t) off);
        return WH_ERROR;
    }
    /* without JIT (an unsupported CPU) the interpreter does the same */
    (void) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    m->md = pcre2_match_data_create_from_pattern(re, NULL);
    if (m->md == NULL) {
        pcre2_code_free(re);
        snprintf(err, errlen, "out of memory");
        return WH_ERROR;
    }
    m->re = re;
    return WH_OK;
}

int
wh_match(const wh_match_t *m, const char *s, size_t len)
{
    if (m->text == NULL) {
        return 1;
    }
    if (m->re == NULL) {
        size_t n = strlen(m->text);

        return n == len && (m->caseless ? strncasecmp(m->text, s, n) == 0
                                        : memcmp(m->text, s, n) == 0);
    }
    return pcre2_match(m->re, (PCRE2_SPTR) s, len, 0, 0, m->md, NULL) >= 0;
}

void
wh_match_free(wh_match_t *m)
{
    pcre2_match_data_free(m->md);
    pcre2_code_free(m->re);
    memset(m, 0, sizeof(*m));
}
