/*
 * wh_version.c -- the versions of the libraries wharf uses: the one each
 * was built against and, where the library can say, the one running.
 *
 * One table for both readers, `wharf -V` and the wharf_build_info sample
 * of /metrics, so the two never disagree. A transport's library is listed
 * only when its module was built.
 */
#include "wh_process.h"

#include <ev.h>
#include <libconfig.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#ifdef WH_HAVE_MODULE_H2
#include <nghttp2/nghttp2.h>
#endif
#ifdef WH_HAVE_MODULE_QUIC
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#endif

#define WH_STR_(x) #x
#define WH_STR(x)  WH_STR_(x)

static wh_lib_version_t versions[8];
static char ev_running[16], pcre2_running[32];

const wh_lib_version_t *
wh_lib_versions(void)
{
    int n = 0;

    if (versions[0].name != NULL) {
        return versions;
    }
    snprintf(ev_running, sizeof(ev_running), "%d.%d", ev_version_major(), ev_version_minor());
    if (pcre2_config(PCRE2_CONFIG_VERSION, pcre2_running) < 0) {
        pcre2_running[0] = '\0';
    }
    /* pcre2_config() gives "10.42 2022-12-11": the number alone, as built */
    pcre2_running[strcspn(pcre2_running, " ")] = '\0';

    versions[n++] = (wh_lib_version_t) { "openssl", "OpenSSL", OPENSSL_VERSION_STR,
                                         OpenSSL_version(OPENSSL_VERSION_STRING) };
#ifdef WH_HAVE_MODULE_H2
    versions[n++] = (wh_lib_version_t) { "nghttp2", "nghttp2", NGHTTP2_VERSION,
                                         nghttp2_version(0)->version_str };
#endif
#ifdef WH_HAVE_MODULE_QUIC
    versions[n++] = (wh_lib_version_t) { "ngtcp2", "ngtcp2", NGTCP2_VERSION,
                                         ngtcp2_version(0)->version_str };
    versions[n++] = (wh_lib_version_t) { "gnutls", "GnuTLS", GNUTLS_VERSION,
                                         gnutls_check_version(NULL) };
#endif
    versions[n++] = (wh_lib_version_t) { "libev", "libev",
                                         WH_STR(EV_VERSION_MAJOR) "." WH_STR(EV_VERSION_MINOR),
                                         ev_running };
    /* libconfig cannot say which one runs */
    versions[n++] = (wh_lib_version_t) { "libconfig", "libconfig",
                                         WH_STR(LIBCONFIG_VER_MAJOR) "."
                                         WH_STR(LIBCONFIG_VER_MINOR) "."
                                         WH_STR(LIBCONFIG_VER_REVISION), NULL };
    versions[n++] = (wh_lib_version_t) { "pcre2", "PCRE2",
                                         WH_STR(PCRE2_MAJOR) "." WH_STR(PCRE2_MINOR),
                                         pcre2_running[0] ? pcre2_running : NULL };
    return versions;
}
