/*
 * wh_tls_stream.c -- a TLS server session as a wh_stream_t over another
 * wh_stream_t (see wh_tls.h).
 *
 * The BIO under the SSL object reads and writes the lower stream directly;
 * a lower WH_AGAIN becomes a BIO retry, and the lower stream's promise to
 * call back is how this stream keeps its own: each SSL call that stalls
 * records which lower event it waits for (a read may need to write, during
 * a TLS 1.3 key update for instance), and the lower callback turns into the
 * upper callback that was promised. OpenSSL may hold decrypted bytes no fd
 * will signal; the relay reads until WH_AGAIN, so they are never stranded.
 *
 * A codec on the filter base (src/stream/wh_filter.c) for the shell only:
 * the base owns the lower stream and its callbacks and keeps the promise in
 * the stream's want; this file maps lower events to the upper ones a
 * stalled SSL call waits for (lower_event).
 *
 * The records of a write leave together: tls_write encrypts up to
 * WH_TLS_BATCH_RECORDS full records, and a short one after them, into one
 * buffer shared by the worker and writes them below in one call, as a
 * socket takes 64 KiB as cheaply as 16 (a relay chunk in websocket frames
 * is four full records and a short one), then the next batch of a longer
 * write. What the lower stream does not take waits in the filter's out
 * (the base writes it first when the lower stream is writable again), and
 * tls_write takes nothing more until it is out, so a stream holds at most
 * one batch beyond what OpenSSL holds. Outside a batch (a write of one
 * record, the handshake, whose flight OpenSSL writes in one piece, what a
 * read answers, such as a key update) records go straight below, and with
 * bytes waiting the BIO asks OpenSSL to retry: a peer that does not read
 * cannot make this stream keep more. close_notify joins the queue, after
 * the last record.
 *
 * After a TLS 1.3 handshake the records are this stream's own (wh_tls13.h):
 * the key log callback hands over the traffic secrets, the SSL object is
 * freed, and what an idle stream keeps is its two keyed ciphers. For that
 * handover OpenSSL must not have read past the client's Finished, so it
 * reads without read-ahead, a header and then a body, from the bytes this
 * stream read below in one call (in): what is left there when the
 * handshake ends are the first records of the session. The SNI and ALPN
 * OpenSSL agreed are kept (names); the version can only be TLSv1.3.
 */
#include "wh_tls.h"
#include "wh_tls13.h"
#include "wh_filter.h"
#include "wh_log.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

typedef struct {
    wh_filter_t f;
    wh_outbuf_t out;        /* records of a batch the lower stream did not take */
    wh_inbuf_t in;          /* bytes read below, not yet opened */
    SSL *ssl;               /* NULL once the records are this stream's own */
    wh_tls13_t rec;         /* their keys, then */
    char *names;            /* then: the SNI, a NUL, the ALPN protocol */
    uint16_t plain;         /* an opened record's content waiting at in's start */
    uint16_t skip;          /* and the bytes after it to drop once it is read */
    uint8_t read_on;        /* lower events a stalled read (or handshake) waits for */
    uint8_t write_on;       /* lower events a stalled write waits for */
    uint8_t secrets;        /* the traffic secrets the key log gave: 1 client's, 2 server's */
    uint8_t eof: 1;         /* the peer's close_notify (or FIN) is read */
    uint8_t broken: 1;      /* a record failed after bytes were returned */
    unsigned long error;    /* OpenSSL error code of the failure */
} wh_tls_stream_t;

#define tls_of(s) wh_container_of(s, wh_tls_stream_t, f.s)

/* the largest record OpenSSL writes, and how many a batch holds: a relay
 * chunk of 64 KiB is four */
#define WH_TLS_RECORD_MAX       (SSL3_RT_HEADER_LENGTH + SSL3_RT_MAX_ENCRYPTED_LENGTH)
/* what OpenSSL may add to a record's content */
#define WH_TLS_RECORD_OVER      (WH_TLS_RECORD_MAX - SSL3_RT_MAX_PLAIN_LENGTH)
#define WH_TLS_BATCH_RECORDS    4
/* what one read below asks room for: two of the longest records */
#define WH_TLS_READ_ROOM        (2 * WH_TLS13_MAX_RECORD)

static BIO_METHOD *bio_method;

/* The batch being written: one at a time in a worker, so one buffer. */
static struct {
    wh_tls_stream_t *ts;        /* whose records these are; NULL: no batch */
    size_t len;
    uint8_t data[WH_TLS_BATCH_RECORDS * WH_TLS_RECORD_MAX];
} batch;

/* Ends the batch: writes it below, after what waits; the rest waits. */
static int
batch_end(void)
{
    wh_tls_stream_t *ts = batch.ts;
    size_t len = batch.len;

    batch.ts = NULL;
    batch.len = 0;
    if (len > 0 && wh_outbuf_send(&ts->out, ts->f.lower, batch.data, len) != WH_OK) {
        ts->f.s.err = ts->f.lower->err;
        return WH_ERROR;
    }
    return WH_OK;
}

static int
bio_write(BIO *b, const char *buf, int len)
{
    wh_tls_stream_t *ts = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (batch.ts == ts) {
        if (batch.len + len > sizeof(batch.data)) {
            if (batch_end() != WH_OK) return -1;
            batch.ts = ts;
        }
        if ((size_t) len > sizeof(batch.data)) {
            return wh_filter_send(&ts->f, buf, len) == WH_OK ? len : -1;
        }
        memcpy(batch.data + batch.len, buf, len);
        batch.len += len;
        return len;
    }
    n = wh_outbuf_empty(&ts->out) ? wh_stream_write(ts->f.lower, buf, len) : WH_AGAIN;
    if (n == WH_AGAIN) {
        BIO_set_retry_write(b);
        return -1;
    }
    return n < 0 ? -1 : (int) n;
}

/* Reads below into in, as much as fits: the count, 0 at EOF, WH_AGAIN or
 * WH_ERROR (from below, or without memory). */
static ssize_t
in_fill(wh_tls_stream_t *ts)
{
    size_t room;
    uint8_t *tail = wh_inbuf_reserve(&ts->in, WH_TLS_READ_ROOM, &room);
    ssize_t n;

    if (tail == NULL) {
        ts->f.lower->err = wh_err_io;
        return WH_ERROR;
    }
    n = wh_stream_read(ts->f.lower, tail, room);
    if (n > 0) {
        ts->in.len += (uint32_t) n;
    } else if (wh_inbuf_size(&ts->in) == 0) {
        wh_inbuf_free(&ts->in);     /* an idle stream holds no buffer */
    }
    return n;
}

/* OpenSSL reads without read-ahead (see the top of the file) */
static int
bio_read(BIO *b, char *buf, int len)
{
    wh_tls_stream_t *ts = BIO_get_data(b);
    ssize_t n;

    BIO_clear_retry_flags(b);
    if (wh_inbuf_size(&ts->in) == 0) {
        n = in_fill(ts);
        if (n == WH_AGAIN) {
            BIO_set_retry_read(b);
            return -1;
        }
        if (n <= 0) return n < 0 ? -1 : 0;
    }
    return (int) wh_inbuf_read(&ts->in, buf, (size_t) len);
}

static long
bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *
get_bio_method(void)
{
    if (bio_method == NULL) {
        bio_method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "wharf stream");
        BIO_meth_set_write(bio_method, bio_write);
        BIO_meth_set_read(bio_method, bio_read);
        BIO_meth_set_ctrl(bio_method, bio_ctrl);
    }
    return bio_method;
}

/* Maps an SSL result: WH_AGAIN (with what the lower side waits for), or
 * WH_ERROR, or the count. EOF is 0. */
static ssize_t
ssl_result(wh_tls_stream_t *ts, int rc, uint8_t *on)
{
    int e = SSL_get_error(ts->ssl, rc);

    switch (e) {
    case SSL_ERROR_NONE:
        return rc;
    case SSL_ERROR_WANT_READ:
        *on = WH_EV_READ;
        return WH_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        *on = WH_EV_WRITE;
        return WH_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_SYSCALL:
        if (ts->f.lower->err == NULL && ERR_peek_error() == 0) {
            return 0;       /* lower EOF without close_notify */
        }
        ts->f.s.err = ts->f.lower->err ? ts->f.lower->err : wh_err_io;
        break;
    default:
        ts->error = ERR_peek_last_error();
        ts->f.s.err = wh_err_bad_input;
        break;
    }
    ERR_clear_error();
    return WH_ERROR;
}

static int
tls_lower_event(wh_filter_t *f, int ev)
{
    wh_tls_stream_t *ts = wh_container_of(f, wh_tls_stream_t, f);
    int up = 0;

    if (ts->read_on & ev) {
        ts->read_on = 0;
        up |= WH_EV_READ;
    }
    if (ts->write_on & ev) {
        ts->write_on = 0;
        up |= WH_EV_WRITE;
    }
    /* a failure below reaches whoever waits */
    if (f->lower->err != NULL) up |= f->s.want;
    return up;
}

void
wh_tls_keylog(const SSL *ssl, const char *line)
{
    wh_tls_stream_t *ts = SSL_get_app_data(ssl);
    const char *hex;
    uint8_t *secret, bit;
    size_t len;

    if (ts == NULL) return;
    if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
        secret = ts->rec.rx.secret;
        bit = 1;
    } else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
        secret = ts->rec.tx.secret;
        bit = 2;
    } else {
        return;
    }
    hex = strchr(line + 24, ' ');       /* after the client random */
    /* refused, and the records left to OpenSSL, if longer than the room */
    if (hex != NULL && OPENSSL_hexstr2buf_ex(secret, WH_TLS13_SECRET_MAX, &len, hex + 1, '\0') == 1
        && len > 0)
    {
        ts->secrets |= bit;
    }
}

/* Takes the records over from OpenSSL where a TLS 1.3 session allows it
 * (see the top of the file); otherwise OpenSSL keeps them. */
static void
own_records(wh_tls_stream_t *ts)
{
    SSL *ssl = ts->ssl;
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    const char *sni, *alpn;
    size_t slen, alen;
    int suite;

    if (ts->secrets != 3 || SSL_version(ssl) != TLS1_3_VERSION || SSL_has_pending(ssl)
        || c == NULL || (suite = wh_tls13_suite(SSL_CIPHER_get_protocol_id(c))) < 0)
    {
        return;
    }
    /* what wh_tls_servername() and wh_tls_alpn() answer once ssl is gone */
    sni = wh_tls_servername(&ts->f.s);
    alpn = wh_tls_alpn(&ts->f.s);
    slen = strlen(sni);
    alen = strlen(alpn);
    ts->names = malloc(slen + 1 + alen + 1);
    if (ts->names == NULL) return;
    if (wh_tls13_init(&ts->rec, suite) != WH_OK) {
        free(ts->names);
        ts->names = NULL;
        return;
    }
    memcpy(ts->names, sni, slen + 1);
    memcpy(ts->names + slen + 1, alpn, alen + 1);
    SSL_free(ssl);
    ts->ssl = NULL;
}

int
wh_tls_handshake(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);
    ssize_t rc;
    uint8_t on = 0;

    rc = ssl_result(ts, SSL_do_handshake(ts->ssl), &on);
    if (rc == WH_AGAIN) {
        ts->read_on = on;
        wh_filter_await(&ts->f, WH_EV_READ, on);
        return WH_AGAIN;
    }
    if (rc <= 0) {
        if (s->err == NULL) s->err = wh_err_closed;
        return WH_ERROR;
    }
    own_records(ts);
    return WH_OK;
}

const char *
wh_tls_error(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);
    const char *r = ts->error ? ERR_reason_error_string(ts->error) : ts->rec.reason;

    return r ? r : (s->err ? s->err : "closed");
}

const char *
wh_tls_alpn(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);
    const unsigned char *p;
    unsigned int len;
    static char buf[256];

    if (ts->ssl == NULL) return ts->names + strlen(ts->names) + 1;
    SSL_get0_alpn_selected(ts->ssl, &p, &len);
    memcpy(buf, p ? (const char *) p : "", len);
    buf[len] = '\0';
    return buf;
}

const char *
wh_tls_servername(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);
    const char *name;

    if (ts->ssl == NULL) return ts->names;
    name = SSL_get_servername(ts->ssl, TLSEXT_NAMETYPE_host_name);
    return name != NULL ? name : "";
}

const char *
wh_tls_version(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);

    return ts->ssl != NULL ? SSL_get_version(ts->ssl) : "TLSv1.3";
}

/* A record that failed: WH_ERROR now, or after the bytes already opened. */
static ssize_t
rec_fail(wh_tls_stream_t *ts, size_t total)
{
    if (total > 0) {
        ts->broken = 1;
        return (ssize_t) total;
    }
    ts->f.s.err = wh_err_bad_input;
    return WH_ERROR;
}

/* Opens records into buf, as many as are in and fit, reading below once
 * when none is whole. A record longer than what buf has left is opened
 * where it lies and read from there (plain). */
static ssize_t
rec_read(wh_tls_stream_t *ts, uint8_t *buf, size_t size)
{
    size_t total = 0, have, n;
    uint8_t *p, *to, type, answer[WH_TLS13_KEY_UPDATE_LEN];
    ssize_t len, rc;
    int ctl;

    if (ts->broken) return rec_fail(ts, 0);
    for (;;) {
        if (ts->plain > 0) {
            n = wh_min((size_t) ts->plain, size - total);
            memcpy(buf + total, ts->in.data + ts->in.pos, n);
            total += n;
            ts->plain -= (uint16_t) n;
            if (ts->plain == 0) {
                n += ts->skip;
                ts->skip = 0;
            }
            wh_inbuf_drop(&ts->in, n);
            if (total == size) return (ssize_t) total;
            continue;
        }
        if (ts->eof) return (ssize_t) total;
        have = wh_inbuf_size(&ts->in);
        p = ts->in.data + ts->in.pos;
        len = have > 0 ? wh_tls13_record_len(&ts->rec, p, have) : 0;
        if (len < 0) return rec_fail(ts, total);
        if (len == 0 || (size_t) len > have) {
            if (total > 0) return (ssize_t) total;
            rc = in_fill(ts);
            if (rc > 0) continue;
            if (rc == 0) {
                /* a FIN without close_notify ends it as one would
                 * (SSL_OP_IGNORE_UNEXPECTED_EOF) */
                ts->eof = 1;
                return 0;
            }
            if (rc == WH_AGAIN) {
                ts->read_on = WH_EV_READ;
                wh_filter_await(&ts->f, WH_EV_READ, WH_EV_READ);
                return WH_AGAIN;
            }
            ts->f.s.err = ts->f.lower->err ? ts->f.lower->err : wh_err_io;
            return WH_ERROR;
        }
        n = (size_t) len - WH_TLS13_HEADER - WH_TLS13_TAG;
        to = n <= size - total ? buf + total : p + WH_TLS13_HEADER;
        rc = wh_tls13_open(&ts->rec, p, (size_t) len, to, &type);
        if (rc < 0) return rec_fail(ts, total);
        if (type == WH_TLS13_DATA) {
            if (to == buf + total) {
                total += (size_t) rc;
                wh_inbuf_drop(&ts->in, (size_t) len);
                if (total == size) return (ssize_t) total;
            } else {
                ts->plain = (uint16_t) rc;
                ts->skip = (uint16_t) ((size_t) len - WH_TLS13_HEADER - (size_t) rc);
                wh_inbuf_drop(&ts->in, WH_TLS13_HEADER);
            }
            continue;
        }
        ctl = wh_tls13_control(&ts->rec, type, to, (size_t) rc);
        wh_inbuf_drop(&ts->in, (size_t) len);
        if (ctl == WH_DECLINED) {
            ts->eof = 1;
        } else if (ctl != WH_OK) {
            return rec_fail(ts, total);
        } else if (ts->rec.answer) {
            /* before our next record, which the new key seals */
            n = wh_tls13_key_update(&ts->rec, answer);
            if (n == 0 || wh_filter_send(&ts->f, answer, n) != WH_OK) {
                if (n == 0) ts->rec.reason = "key update failed";
                return rec_fail(ts, total);
            }
        }
    }
}

/* The content of the next record: up to n bytes of iov from piece *i,
 * offset *off on, as slices in rec (at most WH_FILTER_IOV: fewer bytes
 * where the pieces are more); their count, the bytes in *n. */
static int
rec_slices(const struct iovec *iov, int iovcnt, int *i, size_t *off, struct iovec *rec, size_t *n)
{
    size_t got = 0, m;
    int k;

    for (k = 0; *i < iovcnt && got < *n && k < WH_FILTER_IOV; k++) {
        m = wh_min(iov[*i].iov_len - *off, *n - got);
        rec[k].iov_base = (uint8_t *) iov[*i].iov_base + *off;
        rec[k].iov_len = m;
        got += m;
        *off += m;
        if (*off == iov[*i].iov_len) {
            (*i)++;
            *off = 0;
        }
    }
    *n = got;
    return k;
}

/* Seals iov's bytes into the batch, records of 16 KiB sealed from where
 * the pieces lie, and writes it below in one call, a batch at a time until
 * the lower stream keeps some back; what it does not take waits in out. */
static ssize_t
rec_writev(wh_tls_stream_t *ts, const struct iovec *iov, int iovcnt)
{
    size_t size = wh_iov_len(iov, iovcnt), total = 0, len, off = 0, n, r;
    struct iovec rec[WH_FILTER_IOV];
    int i = 0, k;

    if (size == 0) return 0;
    do {
        for (len = 0; total < size; total += n) {
            n = wh_min(size - total, (size_t) WH_TLS13_MAX_PLAIN);
            /* a short last record still fits after four full ones: a relay
             * chunk in websocket frames leaves in one write */
            if (len + WH_TLS13_KEY_UPDATE_LEN + n + WH_TLS13_OVERHEAD > sizeof(batch.data)) break;
            if (wh_tls13_tx_due(&ts->rec)) {
                r = wh_tls13_key_update(&ts->rec, batch.data + len);
                if (r == 0) goto failed;
                len += r;
            }
            k = rec_slices(iov, iovcnt, &i, &off, rec, &n);
            r = wh_tls13_sealv(&ts->rec, WH_TLS13_DATA, rec, k, batch.data + len);
            if (r == 0) goto failed;
            len += r;
        }
        if (wh_outbuf_send(&ts->out, ts->f.lower, batch.data, len) != WH_OK) {
            ts->f.s.err = ts->f.lower->err;
            return WH_ERROR;
        }
    } while (total < size && wh_outbuf_empty(&ts->out));
    if (!wh_outbuf_empty(&ts->out)) {
        ts->write_on = WH_EV_WRITE;
        wh_filter_await(&ts->f, WH_EV_WRITE, WH_EV_WRITE);
    }
    return (ssize_t) total;

failed:
    /* the cipher: nothing more can be sealed on this session */
    ts->f.s.err = wh_err_io;
    return WH_ERROR;
}

/* Fills buf with as many records as are there: one SSL_read gives one
 * record (2 KiB from a V2Ray client), and the relay writes on what one read
 * returns, so this keeps its writes large. */
static ssize_t
tls_read(wh_stream_t *s, void *buf, size_t size)
{
    wh_tls_stream_t *ts = tls_of(s);
    size_t total = 0;
    ssize_t rc;
    uint8_t on = 0;

    if (s->err) return WH_ERROR;
    if (ts->ssl == NULL) return rec_read(ts, buf, size);
    size = wh_min(size, (size_t) INT32_MAX);
    for (;;) {
        rc = ssl_result(ts, SSL_read(ts->ssl, (uint8_t *) buf + total, (int) (size - total)), &on);
        if (rc > 0) {
            total += rc;
            if (total < size) continue;
            return total;
        }
        if (total > 0) {
            /* what stopped us is seen again on the next call */
            if (rc == WH_ERROR) s->err = NULL;
            return total;
        }
        if (rc == WH_AGAIN) {
            ts->read_on = on;
            wh_filter_await(&ts->f, WH_EV_READ, on);
        }
        return rc;
    }
}

/* Encrypts into the batch until the batch is full, writes it below in one
 * call (see the top of the file), and so on until iov is in or the lower
 * stream keeps some back; a write of one record goes below as OpenSSL
 * makes it. With SSL_MODE_ENABLE_PARTIAL_WRITE one SSL_write makes one
 * record. */
static ssize_t
tls_writev(wh_stream_t *s, const struct iovec *iov, int iovcnt)
{
    wh_tls_stream_t *ts = tls_of(s);
    const uint8_t *buf = iov[0].iov_base;
    size_t total = 0, size = iov[0].iov_len;
    ssize_t rc = 1;         /* positive: nothing stopped the loop */
    uint8_t on = 0;

    if (s->err) return WH_ERROR;
    switch (wh_filter_flush(&ts->f)) {
    case WH_AGAIN:
        ts->write_on |= WH_EV_WRITE;
        return WH_AGAIN;
    case WH_ERROR:
        return WH_ERROR;
    }
    if (ts->ssl == NULL) return rec_writev(ts, iov, iovcnt);
    /* OpenSSL seals one buffer a record */
    if (iovcnt > 1) return wh_stream_write_joined(s, iov, iovcnt);
    size = wh_min(size, (size_t) INT32_MAX);
    /* a batch at a time, until the lower stream keeps some back */
    do {
        /* one record goes straight below: in a batch it would only be copied */
        if (size - total > SSL3_RT_MAX_PLAIN_LENGTH) batch.ts = ts;
        while (total < size
               && batch.len + WH_TLS_RECORD_OVER
                  + wh_min(size - total, (size_t) SSL3_RT_MAX_PLAIN_LENGTH) <= sizeof(batch.data))
        {
            rc = ssl_result(ts, SSL_write(ts->ssl, (const uint8_t *) buf + total,
                                          (int) (size - total)), &on);
            if (rc <= 0) break;
            total += rc;
        }
        if (batch.ts != NULL && batch_end() != WH_OK) {
            rc = WH_ERROR;
        } else if (rc == 0) {
            s->err = wh_err_closed;
            rc = WH_ERROR;
        }
    } while (rc > 0 && total < size && wh_outbuf_empty(&ts->out));
    if (rc == WH_AGAIN || !wh_outbuf_empty(&ts->out)) {
        /* the lower stream promised on_writable */
        ts->write_on = (rc == WH_AGAIN ? on : 0) | (wh_outbuf_empty(&ts->out) ? 0 : WH_EV_WRITE);
        wh_filter_await(&ts->f, WH_EV_WRITE, ts->write_on);
    }
    if (total == 0) return rc;
    /* what stopped us is seen again on the next call */
    if (rc == WH_ERROR) s->err = NULL;
    return total;
}

static ssize_t
tls_write(wh_stream_t *s, const void *buf, size_t size)
{
    struct iovec v = { (void *) buf, size };

    return tls_writev(s, &v, 1);
}

static int
tls_shutdown_write(wh_stream_t *s)
{
    wh_tls_stream_t *ts = tls_of(s);
    static const uint8_t close_notify[2] = { SSL3_AL_WARNING, SSL_AD_CLOSE_NOTIFY };
    uint8_t rec[WH_TLS13_KEY_UPDATE_LEN + sizeof(close_notify) + WH_TLS13_OVERHEAD];
    size_t len = 0;

    if (ts->ssl == NULL) {
        if (wh_tls13_tx_due(&ts->rec)) len = wh_tls13_key_update(&ts->rec, rec);
        len += wh_tls13_seal(&ts->rec, WH_TLS13_ALERT, close_notify, sizeof(close_notify),
                             rec + len);
        if (wh_filter_send(&ts->f, rec, len) != WH_OK) return WH_ERROR;
        return wh_filter_shutdown(&ts->f);
    }
    /* close_notify, best effort: the FIN below ends the stream anyway; it
     * goes after the records that wait */
    batch.ts = ts;
    SSL_shutdown(ts->ssl);
    ERR_clear_error();
    if (batch_end() != WH_OK) return WH_ERROR;
    return wh_filter_shutdown(&ts->f);
}

static void
tls_wait(wh_stream_t *s, int events)
{
    wh_tls_stream_t *ts = tls_of(s);

    ts->read_on |= events & WH_EV_READ;
    ts->write_on |= events & WH_EV_WRITE;
    wh_filter_wait(s, events);
}

static void
tls_release(wh_filter_t *f)
{
    wh_tls_stream_t *ts = wh_container_of(f, wh_tls_stream_t, f);

    SSL_free(ts->ssl);
    free(ts->names);
    wh_tls13_free(&ts->rec);
}

/* What a batch left waits in out, written first by the base. */
static const wh_filter_ops_t tls_ops = {
    .stream = {
        .name = "tls",
        .read = tls_read,
        .write = tls_write,
        .writev = tls_writev,
        .shutdown_write = tls_shutdown_write,
        .wait = tls_wait,
        .splice_fd = NULL,
        .flow = wh_filter_flow,
        .destroy = wh_filter_destroy,
    },
    .out = offsetof(wh_tls_stream_t, out),
    .ahead = offsetof(wh_tls_stream_t, in),
    .lower_event = tls_lower_event,
    .release = tls_release,
};

wh_stream_t *
wh_tls_server(wh_stream_t *lower, wh_tls_conf_t *tls)
{
    SSL *ssl = SSL_new(wh_tls_ctx(tls));
    BIO *bio = BIO_new(get_bio_method());
    wh_tls_stream_t *ts = NULL;

    if (ssl == NULL || bio == NULL
        || (ts = wh_filter_new(sizeof(*ts), &tls_ops, lower, NULL, 0)) == NULL)
    {
        SSL_free(ssl);
        BIO_free(bio);
        ERR_clear_error();
        return NULL;
    }
    ts->ssl = ssl;
    SSL_set_app_data(ssl, ts);
    BIO_set_data(bio, ts);
    BIO_set_init(bio, 1);
    SSL_set_bio(ssl, bio, bio);
    SSL_set_accept_state(ssl);
    return &ts->f.s;
}
