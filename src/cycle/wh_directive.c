/*
 * wh_directive.c -- settings declared as tables (see wh_directive.h).
 *
 * The scalar types go through wh_conf.c's getters, so a table-read setting
 * is refused with the very words a hand-written read used. A table is
 * applied in two passes, defaults then the group in table order, so the
 * first error reported is the first in the table, as it was when each
 * owner called the getters one after another. Strings are copied: a conf
 * outlives the libconfig tree it was read from (the fuzz harnesses destroy
 * it at once).
 */
#include "wh_directive.h"
#include "wh_cycle.h"

#include <strings.h>

static void *
field(void *conf, const wh_directive_t *d)
{
    return (char *) conf + d->offset;
}

static void
set_string(char **f, char *v)
{
    free(*f);
    *f = v;
}

/* spec 4.1: a leading "/" is added, so "" is "/" */
static char *
url_path(const char *p)
{
    size_t n = strlen(p) + 2;
    char *s = wh_xalloc(n);

    snprintf(s, n, "%s%s", p[0] == '/' ? "" : "/", p);
    return s;
}

static void
list_add(wh_str_list_t *l, const char *s, size_t n)
{
    char **v = wh_xalloc(sizeof(char *) * (l->n + 1));

    if (l->n > 0) {
        memcpy(v, l->v, sizeof(char *) * l->n);
    }
    free(l->v);
    l->v = v;
    l->v[l->n] = wh_xalloc(n + 1);
    memcpy(l->v[l->n], s, n);
    l->n++;
}

static void
list_free(wh_str_list_t *l)
{
    while (l->n > 0) {
        free(l->v[--l->n]);
    }
    free(l->v);
    l->v = NULL;
}

static int
list_set(wh_conf_t *cf, const config_setting_t *s, const wh_directive_t *d, wh_str_list_t *l)
{
    const char *str, *comma;
    int i;

    list_free(l);
    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        /* split at every ',' with nothing trimmed (spec 5.1) */
        for (str = config_setting_get_string(s); ; str = comma + 1) {
            comma = strchr(str, ',');
            list_add(l, str, comma ? (size_t) (comma - str) : strlen(str));
            if (comma == NULL) {
                return WH_OK;
            }
        }
    }
    if (!config_setting_is_array(s) && !config_setting_is_list(s)) {
        wh_conf_error(cf, s, "\"%s\" must be a string or a list of strings", d->name);
        return WH_ERROR;
    }
    for (i = 0; i < config_setting_length(s); i++) {
        str = config_setting_get_string_elem(s, i);
        if (str == NULL) {
            wh_conf_error(cf, s, "\"%s\" must list strings", d->name);
            return WH_ERROR;
        }
        list_add(l, str, strlen(str));
    }
    if (l->n == 0 && d->dflt_str != NULL) {
        list_add(l, d->dflt_str, strlen(d->dflt_str));
    }
    return WH_OK;
}

static int
enum_set(wh_conf_t *cf, const config_setting_t *group, const wh_directive_t *d, int *out)
{
    const char *v = NULL;
    char words[256];
    size_t n = 0;
    int i;

    if (wh_conf_string(cf, group, d->name, &v) == WH_ERROR) {
        return WH_ERROR;
    }
    for (i = 0; d->values[i] != NULL; i++) {
        if (strcasecmp(v, d->values[i]) == 0) {
            *out = i;
            return WH_OK;
        }
    }
    /* "a, b or c" */
    words[0] = '\0';
    for (i = 0; d->values[i] != NULL && n < sizeof(words); i++) {
        n += snprintf(words + n, sizeof(words) - n, "%s%s",
                      i == 0 ? "" : d->values[i + 1] == NULL ? " or " : ", ", d->values[i]);
    }
    wh_conf_error(cf, config_setting_get_member(group, d->name), "unknown %s \"%s\" (%s)",
                  d->what, v, words);
    return WH_ERROR;
}

static const wh_directive_t *
lookup(const wh_directive_t *table, const char *name)
{
    for (; table->name != NULL; table++) {
        if (strcmp(table->name, name) == 0) {
            return table;
        }
    }
    return NULL;
}

/* wh_conf_check_names() with the table as the two lists */
static int
check_names(wh_conf_t *cf, const config_setting_t *group, const wh_directive_t *table)
{
    const wh_directive_t *d;
    int i, n = config_setting_length(group);

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);

        d = lookup(table, name);
        if (d == NULL) {
            wh_conf_error(cf, s, "unknown directive \"%s\"", name);
            return WH_ERROR;
        }
        if (d->type == WH_DIR_CLIENT) {
            wh_conf_warn(cf, s, "\"%s\" is a client-only setting, ignored", name);
        }
    }
    return WH_OK;
}

static void
set_default(wh_conf_t *cf, const wh_directive_t *d, void *f)
{
    const char *str = d->dflt_str;

    switch (d->type) {
    case WH_DIR_BOOL:
    case WH_DIR_ENUM:
        *(int *) f = (int) d->dflt;
        break;
    case WH_DIR_INT:
        *(long *) f = (long) d->dflt;
        break;
    case WH_DIR_SECONDS:
        *(double *) f = d->dflt;
        break;
    case WH_DIR_STRING:
        set_string(f, str ? wh_xstrdup(str) : NULL);
        break;
    case WH_DIR_PATH:
        set_string(f, str ? wh_cycle_path(cf->prefix, str) : NULL);
        break;
    case WH_DIR_URL_PATH:
        set_string(f, str ? url_path(str) : NULL);
        break;
    case WH_DIR_LIST:
        list_free(f);
        if (str != NULL) {
            list_add(f, str, strlen(str));
        }
        break;
    default:
        break;
    }
}

/* One setting of group, present or (CUSTOM, GROUP) not. */
static int
set_one(wh_conf_t *cf, const config_setting_t *group, const wh_directive_t *d, void *conf)
{
    config_setting_t *s = group ? config_setting_get_member(group, d->name) : NULL;
    void *f = field(conf, d);
    const char *str;
    long n;

    switch (d->type) {
    case WH_DIR_CUSTOM:
        return d->handler(cf, group, d, f) == WH_ERROR ? WH_ERROR : WH_OK;
    case WH_DIR_GROUP:
        if (s != NULL && wh_conf_group(cf, group, d->name, &s) == WH_ERROR) {
            return WH_ERROR;
        }
        return wh_directives_apply(cf, s, d->group, conf);
    default:
        break;
    }
    if (s == NULL) {
        return WH_OK;
    }

    switch (d->type) {
    case WH_DIR_BOOL:
        return wh_conf_bool(cf, group, d->name, f) == WH_ERROR ? WH_ERROR : WH_OK;
    case WH_DIR_INT:
        if (wh_conf_int(cf, group, d->name, (long) d->min, (long) d->max, &n) == WH_ERROR) {
            return WH_ERROR;
        }
        *(long *) f = n;
        return WH_OK;
    case WH_DIR_SECONDS:
        return wh_conf_seconds(cf, group, d->name, d->min, d->max, f) == WH_ERROR
               ? WH_ERROR : WH_OK;
    case WH_DIR_STRING:
    case WH_DIR_PATH:
    case WH_DIR_URL_PATH:
        if (wh_conf_string(cf, group, d->name, &str) == WH_ERROR) {
            return WH_ERROR;
        }
        if (d->type == WH_DIR_STRING) {
            set_string(f, wh_xstrdup(str));
        } else if (d->type == WH_DIR_PATH) {
            set_string(f, wh_cycle_path(cf->prefix, str));
        } else if (str[0] != '\0') {
            set_string(f, url_path(str));
        }
        return WH_OK;
    case WH_DIR_ENUM:
        return enum_set(cf, group, d, f);
    case WH_DIR_LIST:
        return list_set(cf, s, d, f);
    default:
        return WH_OK;       /* MODULE, CLIENT: not ours to read */
    }
}

int
wh_directives_apply(wh_conf_t *cf, const config_setting_t *group,
                    const wh_directive_t *table, void *conf)
{
    const wh_directive_t *d;

    for (d = table; d->name != NULL; d++) {
        set_default(cf, d, field(conf, d));
    }
    if (group != NULL && check_names(cf, group, table) != WH_OK) {
        return WH_ERROR;
    }
    for (d = table; d->name != NULL; d++) {
        if (set_one(cf, group, d, conf) != WH_OK) {
            return WH_ERROR;
        }
    }
    return WH_OK;
}

void
wh_directives_free(const wh_directive_t *table, void *conf)
{
    const wh_directive_t *d;

    if (conf == NULL) {
        return;
    }
    for (d = table; d->name != NULL; d++) {
        switch (d->type) {
        case WH_DIR_STRING:
        case WH_DIR_PATH:
        case WH_DIR_URL_PATH:
            set_string(field(conf, d), NULL);
            break;
        case WH_DIR_LIST:
            list_free(field(conf, d));
            break;
        case WH_DIR_GROUP:
            wh_directives_free(d->group, conf);
            break;
        default:
            break;
        }
    }
}
