/*
 * wh_fallback.c -- a listener's "fallbacks" (see wh_fallback.h).
 *
 * The model is Xray's, which the users of this field already write: the
 * listener keeps its transport, and an ordered list says where a
 * connection goes when that transport would refuse it. Entries with a
 * name (SNI) or an alpn and no path are tried once TLS is done, before the
 * transport sees a byte; the others when the transport's handshake would
 * refuse a request (a wrong path, no upgrade, bytes that are not HTTP):
 * those whose path matches, then those without a condition. Values are
 * exact, or nginx's "~" and "~*" regular expressions (wh_match.h).
 *
 * A destination is an upstream group, as a listener's own, or another
 * listener ("listener:TAG") whose transport then takes the connection
 * inside the worker, reading again what the front already read; a
 * listener with no address only takes such hand-offs. What cannot work is
 * refused at load, at its line, rather than found by a client: a tag that
 * does not exist, a target that would need a second TLS, a loop, an entry
 * its listener can never try.
 */
#include "wh_fallback.h"
#include "wh_cycle.h"

#include <strings.h>

static const char *const entry_names[] = { "name", "alpn", "path", "dest", "xver", NULL };

static int
read_match(wh_conf_t *cf, const config_setting_t *g, const char *key, int caseless,
           wh_match_t *m)
{
    const char *text = NULL;
    char err[512];

    if (wh_conf_string(cf, g, key, &text) == WH_ERROR) return WH_ERROR;
    if (text == NULL) return WH_OK;
    if (wh_match_compile(m, text, caseless, err, sizeof(err)) != WH_OK) {
        wh_conf_error(cf, config_setting_get_member(g, key), "\"%s\": %s", key, err);
        return WH_ERROR;
    }
    return WH_OK;
}

static int
read_entry(wh_conf_t *cf, wh_cycle_t *c, wh_listener_t *ls, const config_setting_t *g,
           wh_fallback_t *fb, int index)
{
    const config_setting_t *dest;
    const char *text;
    char name[WH_STATS_TAG_LEN];
    long xver = 0;

    fb->file = config_setting_source_file(g) ?: cf->file;
    fb->line = config_setting_source_line(g);
    if (config_setting_type(g) != CONFIG_TYPE_GROUP) {
        wh_conf_error(cf, g, "a fallback must be a group { ... }");
        return WH_ERROR;
    }
    if (wh_conf_check_names(cf, g, entry_names, NULL) != WH_OK
        || read_match(cf, g, "name", 1, &fb->name) != WH_OK
        || read_match(cf, g, "alpn", 0, &fb->alpn) != WH_OK
        || read_match(cf, g, "path", 0, &fb->path) != WH_OK
        || wh_conf_int(cf, g, "xver", 0, 2, &xver) == WH_ERROR)
    {
        return WH_ERROR;
    }
    dest = config_setting_get_member(g, "dest");
    if (dest == NULL) {
        wh_conf_error(cf, g, "fallback has no \"dest\"");
        return WH_ERROR;
    }
    text = config_setting_get_string(dest);
    if (text != NULL && strncmp(text, "listener:", 9) == 0) {
        if (xver != 0) {
            wh_conf_error(cf, config_setting_get_member(g, "xver"),
                          "\"xver\" is for an upstream, not a hand-off to a listener");
            return WH_ERROR;
        }
        fb->to_tag = text + 9;
        return WH_OK;
    }
    /* the group's name in the stats: the listener's tag and the entry */
    snprintf(name, sizeof(name), "%.*s/fallback%d", (int) sizeof(name) - 20, ls->tag,
             index % 1000 + 1);
    fb->dest.upstream = wh_cycle_upstream(cf, c, dest, name);
    fb->dest.xver = (uint8_t) xver;
    if (fb->dest.upstream == NULL) return WH_ERROR;
    if (fb->dest.upstream->kind == WH_UPSTREAM_ECHO) {
        wh_conf_error(cf, dest, "a fallback's \"dest\" cannot be \"echo\"");
        return WH_ERROR;
    }
    return WH_OK;
}

int
wh_fallbacks_conf(wh_conf_t *cf, wh_cycle_t *c, wh_listener_t *ls, const config_setting_t *list)
{
    wh_fallbacks_t *fbs = &ls->fallbacks;
    wh_fallback_t *fb;
    int i, n;

    if (list == NULL) return WH_OK;
    if (config_setting_type(list) != CONFIG_TYPE_LIST) {
        wh_conf_error(cf, list, "\"fallbacks\" must be a list ( { ... }, ... )");
        return WH_ERROR;
    }
    n = config_setting_length(list);
    fbs->v = wh_xalloc(sizeof(wh_fallback_t) * (n ? n : 1));
    for (i = 0; i < n; i++) {
        fb = &fbs->v[i];
        fbs->n = i + 1;
        if (read_entry(cf, c, ls, config_setting_get_elem(list, i), fb, i) != WH_OK) {
            return WH_ERROR;
        }
        if ((fb->name.text || fb->alpn.text) && !fb->path.text) fbs->on_connection = 1;
    }
    return WH_OK;
}

static wh_listener_t *
find_listener(wh_cycle_t *c, const char *tag)
{
    int i;

    for (i = 0; i < c->nlisteners; i++) {
        if (strcmp(c->listeners[i].tag, tag) == 0) return &c->listeners[i];
    }
    return NULL;
}

/* Whether following hand-offs from ls comes back to start. */
static int
loops(const wh_listener_t *ls, const wh_listener_t *start, int depth)
{
    int i;

    if (depth > 64) return 1;
    for (i = 0; i < ls->fallbacks.n; i++) {
        const wh_listener_t *to = ls->fallbacks.v[i].to;

        if (to == NULL) continue;
        if (to == start || loops(to, start, depth + 1)) return 1;
    }
    return 0;
}

static int
check_listener(wh_conf_t *cf, wh_cycle_t *c, wh_listener_t *ls)
{
    int i, refuses = ls->module->fallback != NULL && ls->module->fallback(ls);

    for (i = 0; i < ls->fallbacks.n; i++) {
        wh_fallback_t *fb = &ls->fallbacks.v[i];
        const char *file = fb->file;

        if ((fb->name.text || fb->alpn.text) && ls->tls == NULL) {
            wh_conf_error_at(cf, file, fb->line, "a fallback on \"name\" or \"alpn\" needs "
                             "\"security\" \"tls\" on listener \"%s\"", ls->tag);
            return WH_ERROR;
        }
        if ((fb->path.text || !(fb->name.text || fb->alpn.text)) && !refuses) {
            wh_conf_error_at(cf, file, fb->line, "this fallback is never tried: the %s transport "
                             "of listener \"%s\" accepts every connection (only \"name\" and "
                             "\"alpn\" fallbacks apply)", ls->module->name, ls->tag);
            return WH_ERROR;
        }
        if (fb->to_tag == NULL) continue;
        fb->to = find_listener(c, fb->to_tag);
        if (fb->to == NULL) {
            wh_conf_error_at(cf, file, fb->line, "no listener \"%s\" to hand off to",
                             fb->to_tag);
            return WH_ERROR;
        }
        if (fb->to->tls != NULL) {
            wh_conf_error_at(cf, file, fb->line, "listener \"%s\" has \"security\" \"tls\": a "
                             "hand-off arrives with TLS already ended", fb->to_tag);
            return WH_ERROR;
        }
        if (fb->to->module->datagram != NULL || fb->to->proxy_protocol) {
            wh_conf_error_at(cf, file, fb->line, "listener \"%s\" cannot take a hand-off (%s)",
                             fb->to_tag, fb->to->proxy_protocol ? "it expects a PROXY header"
                                                                : "a datagram transport");
            return WH_ERROR;
        }
    }
    return WH_OK;
}

int
wh_fallbacks_check(wh_conf_t *cf, wh_cycle_t *c)
{
    int i, j, taken;

    for (i = 0; i < c->nlisteners; i++) {
        if (check_listener(cf, c, &c->listeners[i]) != WH_OK) return WH_ERROR;
    }
    for (i = 0; i < c->nlisteners; i++) {
        wh_listener_t *ls = &c->listeners[i];

        if (loops(ls, ls, 0)) {
            wh_conf_error_at(cf, ls->file, ls->line, "the fallbacks of listener \"%s\" hand "
                             "off in a loop", ls->tag);
            return WH_ERROR;
        }
        if (ls->addr.len != 0) continue;
        for (taken = 0, j = 0; j < c->nlisteners && !taken; j++) {
            const wh_fallbacks_t *fbs = &c->listeners[j].fallbacks;
            int k;

            for (k = 0; k < fbs->n; k++) taken |= fbs->v[k].to == ls;
        }
        if (!taken) {
            wh_conf_error_at(cf, ls->file, ls->line, "listener \"%s\" has no \"listen\", and no "
                             "fallback hands off to it", ls->tag);
            return WH_ERROR;
        }
    }
    return WH_OK;
}

void
wh_fallbacks_free(wh_fallbacks_t *fbs)
{
    int i;

    for (i = 0; i < fbs->n; i++) {
        wh_match_free(&fbs->v[i].name);
        wh_match_free(&fbs->v[i].alpn);
        wh_match_free(&fbs->v[i].path);
    }
    free(fbs->v);
    fbs->v = NULL;
    fbs->n = 0;
}

static int
tls_fields_match(const wh_fallback_t *fb, const char *sni, const char *alpn)
{
    return wh_match(&fb->name, sni, strlen(sni)) && wh_match(&fb->alpn, alpn, strlen(alpn));
}

const wh_fallback_t *
wh_fallback_connection(const wh_listener_t *ls, const char *sni, const char *alpn)
{
    int i;

    for (i = 0; i < ls->fallbacks.n; i++) {
        const wh_fallback_t *fb = &ls->fallbacks.v[i];

        if ((fb->name.text || fb->alpn.text) && !fb->path.text && tls_fields_match(fb, sni, alpn))
        {
            return fb;
        }
    }
    return NULL;
}

const wh_fallback_t *
wh_fallback_request(const wh_listener_t *ls, const char *sni, const char *alpn,
                    const char *path, size_t path_len)
{
    int i;

    for (i = 0; path != NULL && i < ls->fallbacks.n; i++) {
        const wh_fallback_t *fb = &ls->fallbacks.v[i];

        if (fb->path.text && wh_match(&fb->path, path, path_len)
            && tls_fields_match(fb, sni, alpn))
        {
            return &ls->fallbacks.v[i];
        }
    }
    for (i = 0; i < ls->fallbacks.n; i++) {
        const wh_fallback_t *fb = &ls->fallbacks.v[i];

        if (!fb->name.text && !fb->alpn.text && !fb->path.text) return fb;
    }
    return NULL;
}
