/*
 * wh_random.h -- nonces for the AEADs that seal every datagram (the QUIC
 * outer layer, mKCP's seed security): random, as V2Ray draws them, but
 * drawn from the generator a page at a time.
 */
#ifndef WH_RANDOM_H
#define WH_RANDOM_H

#include "wh_core.h"

/* Fills out with len random bytes. WH_OK, or WH_ERROR when the generator
 * fails (nothing may then be sent under a reused nonce). */
int wh_random_nonce(uint8_t *out, size_t len);

#endif /* WH_RANDOM_H */
