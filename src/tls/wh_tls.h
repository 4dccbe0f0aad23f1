/*
 * wh_tls.h -- the one TLS layer (OpenSSL 3) every stream transport uses.
 *
 * Configuration side (master): tlsSettings as V2Ray reads them (spec 2.1),
 * certificate and key files read while the master is still root, so a key
 * readable by root only works; a reload reads them again (renewal without a
 * restart). One SSL_CTX per listener, shared by the workers through fork().
 *
 * Stream side (workers): wh_tls_server() wraps any wh_stream_t -- an
 * accepted socket (wh_handshake.c) or an mKCP session (the kcp module) --
 * through a BIO that calls the lower stream's read and write directly, so
 * TLS over a socket costs no copy beyond OpenSSL's own and a transport
 * never touches OpenSSL.
 */
#ifndef WH_TLS_H
#define WH_TLS_H

#include "wh_conf.h"
#include "wh_stream.h"

typedef struct wh_tls_conf_s wh_tls_conf_t;

/* Parses tlsSettings (may be NULL: all defaults) for a listener whose
 * transport offers alpn_default when tlsSettings.alpn is unset. */
int wh_tls_parse(wh_conf_t *cf, const config_setting_t *tls_settings,
                 const config_setting_t *where, const char *const *alpn_default,
                 wh_tls_conf_t **out);
void wh_tls_free(wh_tls_conf_t *tls);

/* The certificate for an SNI (spec 2.4): an index into tlsSettings'
 * certificates; WH_TLS_MINT when an "issue" CA must mint one; -1 when there
 * is none. */
#define WH_TLS_MINT (-2)
int wh_tls_choose(const wh_tls_conf_t *tls, const char *sni);

/* For a TLS stack other than OpenSSL (QUIC runs GnuTLS, spec 8.4): the
 * number of certificates; certificate i (with its chain) and its key as
 * malloc'ed PEM text, WH_DECLINED for one without a key ("verify"); the
 * ALPN list in wire format (length-prefixed names). */
int wh_tls_ncerts(const wh_tls_conf_t *tls);
int wh_tls_cert_pem(const wh_tls_conf_t *tls, int i, char **cert, char **key);
const unsigned char *wh_tls_alpn_list(const wh_tls_conf_t *tls, size_t *len);

/* The key log callback through which a stream takes its TLS 1.3 traffic
 * secrets (set by wh_tls_conf.c where no tickets follow the handshake). */
struct ssl_st;
void wh_tls_keylog(const struct ssl_st *ssl, const char *line);

/* The listener's SSL_CTX (for wh_tls_stream.c). */
struct ssl_ctx_st *wh_tls_ctx(wh_tls_conf_t *tls);

/* Wraps lower (which it then owns) as the server side of a TLS session. */
wh_stream_t *wh_tls_server(wh_stream_t *lower, wh_tls_conf_t *tls);

/* Runs the handshake: WH_OK when done; WH_AGAIN with the promise of an
 * on_readable when it can go on; WH_ERROR (s->err set, the reason logged by
 * the caller from wh_tls_error()). */
int wh_tls_handshake(wh_stream_t *s);
/* A short reason for the last failure, for logs ("no shared cipher", ...). */
const char *wh_tls_error(wh_stream_t *s);
/* The negotiated ALPN protocol ("" when none). */
const char *wh_tls_alpn(wh_stream_t *s);
/* The name the client asked for (SNI; "" when none). */
const char *wh_tls_servername(wh_stream_t *s);
/* The protocol agreed, as OpenSSL names it ("TLSv1.3"): a static string. */
const char *wh_tls_version(wh_stream_t *s);

#endif
