/*
 * wh_random.c -- random nonces, drawn from OpenSSL's generator 4 KiB at a
 * time and handed out in order.
 *
 * V2Ray seals each QUIC and mKCP datagram under a fresh random 12-byte
 * nonce. One RAND_bytes() per datagram cost more than sealing a full one:
 * the generator asks getpid(2) on every call to notice a fork, takes its
 * lock and runs its own cipher for 12 bytes. From a page the same bytes
 * cost a copy, and the generator runs once per 341 nonces.
 *
 * The one danger of a buffer is fork: a child would hand out the very
 * nonces its parent (or a sibling) still holds, and every worker seals
 * under the same key. So fork empties the buffer in the child, as
 * wh_log.c forgets its pid. Workers are single-threaded; so is this.
 */
#include "wh_random.h"

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define WH_RANDOM_PAGE 4096

static uint8_t page[WH_RANDOM_PAGE];
static size_t used = WH_RANDOM_PAGE;    /* bytes of page already handed out */

static void
page_forgotten(void)
{
    OPENSSL_cleanse(page, sizeof(page));
    used = sizeof(page);
}

int
wh_random_nonce(uint8_t *out, size_t len)
{
    static int hooked;

    if (len > sizeof(page))
        return RAND_bytes(out, (int) len) == 1 ? WH_OK : WH_ERROR;

    if (len > sizeof(page) - used) {
        if (!hooked) {
            if (pthread_atfork(NULL, NULL, page_forgotten) != 0)
                return WH_ERROR;
            hooked = 1;
        }
        if (RAND_bytes(page, sizeof(page)) != 1)
            return WH_ERROR;
        used = 0;
    }
    memcpy(out, page + used, len);
    used += len;
    return WH_OK;
}
