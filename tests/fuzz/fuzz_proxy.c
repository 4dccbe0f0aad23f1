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
 */
#include "wh_proxy_protocol.h"

#include <stdlib.h>

/* beyond this the v1 line or v2 block is decided; longer inputs only add payload */
#define PREFIX_MAX 1100

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_proxy_header_t h;
    const char *err;
    ssize_t r, decided = 0;
    size_t n, last = size < PREFIX_MAX ? size : PREFIX_MAX;

    for (n = 0; n <= last; n++) {
        err = NULL;
        r = wh_proxy_parse(data, n, &h, &err);
        if (r < 0 && err == NULL) abort();
        if (r > 0 && ((size_t) r > n || (h.version != 1 && h.version != 2))) abort();
        if (r > 0 && !h.local && h.src.ss_family != AF_INET && h.src.ss_family != AF_INET6) abort();
        if (decided != 0 && r != decided) abort();      /* a decision never changes */
        decided = r;
    }
    if (size > last) {
        r = wh_proxy_parse(data, size, NULL, NULL);
        if (decided != 0 && r != decided) abort();
    }
    return 0;
}
