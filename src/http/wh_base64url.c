/*
 * wh_base64url.c -- see wh_base64url.h.
 *
 * Each group of four characters goes through OpenSSL's EVP_DecodeBlock
 * after the URL alphabet is mapped back and a short last group is padded;
 * the group's bytes are copied out only after the room for them is checked.
 */
#include "wh_base64url.h"

#include <string.h>
#include <openssl/evp.h>

ssize_t
wh_base64url_decode(const char *in, size_t len, uint8_t *out, size_t size)
{
    unsigned char tmp[4], dec[3];
    size_t i, k, chunk, o = 0;

    for (i = 0; i < len; i += 4) {
        chunk = len - i < 4 ? len - i : 4;
        if (chunk == 1) return -1;
        for (k = 0; k < 4; k++) {
            char c = k < chunk ? in[i + k] : '=';
            if (k < chunk && (c == '=' || c == '+' || c == '/')) return -1;
            tmp[k] = c == '-' ? '+' : c == '_' ? '/' : c;
        }
        if (EVP_DecodeBlock(dec, tmp, 4) != 3) return -1;
        chunk--;                /* 4 characters -> 3 bytes, 3 -> 2, 2 -> 1 */
        if (chunk > size - o) return -1;
        memcpy(out + o, dec, chunk);
        o += chunk;
    }
    return (ssize_t) o;
}
