/*
 * fuzz_check.h -- what the codec targets share: a check that aborts with
 * its place (libFuzzer keeps the input), and the empty target a file
 * becomes when ./configure left its module out, so the wildcard build of
 * tests/fuzz/fuzz_*.c never fails to link.
 */
#ifndef FUZZ_CHECK_H
#define FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FZ_CHECK(c)                                                        \
    do {                                                                   \
        if (!(c)) {                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #c);                                         \
            abort();                                                       \
        }                                                                  \
    } while (0)

#define FZ_NOTHING_TO_FUZZ                                                 \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)           \
    {                                                                      \
        (void) data;                                                       \
        (void) size;                                                       \
        return 0;                                                          \
    }

#endif
