/*
 * wh_base64url.h -- base64url without padding (Go's RawURLEncoding), the
 * encoding of client-chosen header values: websocket early data (spec 4.2)
 * and h2c's HTTP2-Settings (RFC 7540 3.2.1).
 *
 * One decoder for both, because both values come from the network before
 * any authentication and both land in fixed buffers: the output size is
 * checked before every byte is written, never after.
 */
#ifndef WH_BASE64URL_H
#define WH_BASE64URL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Decodes len characters of in into out (size bytes). Returns the bytes
 * written, or -1 if in is not base64url without padding ('+', '/', '='
 * and a lone trailing character are refused) or would not fit in size. */
ssize_t wh_base64url_decode(const char *in, size_t len, uint8_t *out, size_t size);

/* The decoded size of len valid characters. */
#define wh_base64url_decoded_len(len) ((len) / 4 * 3 + ((len) % 4 ? (len) % 4 - 1 : 0))

#endif
