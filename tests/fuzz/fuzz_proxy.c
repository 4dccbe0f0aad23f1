/*
 * fuzz_proxy.c -- the PROXY protocol v1/v2 parser (src/stream/wh_proxy_protocol.c).
 *
 * The handshake peeks a growing window and asks the parser for a verdict
 * each time, so what matters besides memory safety is that the verdict is
 * stable as bytes arrive: every prefix of the input is parsed, and the
 * answers must read "need more" (0) until one decision, which then never
 * changes -- a header accepted at length r stays r, a refusal stays a
 * refusal. A decision is checked for sanity (length within the input, an
 * error string with every refusal, an IP family with every address).
 *
 * Parsing every prefix made each input cost up to 1100 parses. Past the
 * first DENSE bytes the only way an answer can change is a v2 header
 * completing at 16 + its length, so there the prefixes checked are the
 * ones around where the full input says it was decided, plus every
 * STRIDE-th, still in order (the same "never changes" check), and the
 * harness itself is kept out of the coverage feedback: its compares
 * say nothing about the parser and cost more than the parser did.
 */
#include "wh_proxy_protocol.h"

#include <stdlib.h>

/* beyond this the v1 line or v2 block is decided; longer inputs only add payload */
#define PREFIX_MAX 1100
/* every prefix up to here: the whole v1 line (WH_PROXY_V1_MAX) and the v2
 * fixed part; a v2 address block is taken whole once its length is in */
#define DENSE (WH_PROXY_V1_MAX + 21)
#define STRIDE 61
#define NO_COVERAGE __attribute__((no_sanitize("coverage")))

NO_COVERAGE static void
check(const uint8_t *data, size_t n, ssize_t *decided)
{
    wh_proxy_header_t h;
    const char *err = NULL;
    ssize_t r = wh_proxy_parse(data, n, &h, &err);

    if (r < 0 && err == NULL) abort();
    if (r > 0 && ((size_t) r > n || (h.version != 1 && h.version != 2))) abort();
    if (r > 0 && !h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6) abort();
    if (*decided != 0 && r != *decided) abort();        /* a decision never changes */
    *decided = r;
}

/* The next prefix length after n to check: dense, then sparse but never
 * skipping the lengths around edge, where the full input was decided. */
NO_COVERAGE static size_t
next_len(size_t n, size_t edge)
{
    size_t next = n + 1;

    if (n < DENSE) return next;
    next = n + STRIDE;
    if (edge > 1 && n < edge - 1 && edge - 1 < next) next = edge - 1;
    else if (n < edge && edge < next) next = edge;
    else if (n < edge + 1 && edge + 1 < next) next = edge + 1;
    return next;
}

NO_COVERAGE int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ssize_t r, decided = 0, full;
    size_t n, last = size < PREFIX_MAX ? size : PREFIX_MAX;

    full = wh_proxy_parse(data, last, NULL, NULL);
    for (n = 0; n <= last; n = next_len(n, full > 0 ? (size_t) full : 0)) {
        check(data, n, &decided);
    }
    if (last > DENSE) check(data, last, &decided);   /* the stride may step over it */
    if (size > last) {
        r = wh_proxy_parse(data, size, NULL, NULL);
        if (decided != 0 && r != decided) abort();
    }
    return 0;
}
