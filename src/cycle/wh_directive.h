/*
 * wh_directive.h -- settings declared as tables, nginx's ngx_command_t
 * done for libconfig groups.
 *
 * A table lists every name a group may hold, with its type, range, default
 * and the offsetof() of the field it fills in a conf struct; one call
 * refuses unknown names, checks types and ranges (with wh_conf.c's
 * messages and FILE:LINE), applies the defaults and fills the struct. What
 * a table cannot say (a check across fields, a value that needs the
 * listener) is left to the owner's code after the call. A transport
 * module's table hangs off its descriptor (wh_module.h).
 */
#ifndef WH_DIRECTIVE_H
#define WH_DIRECTIVE_H

#include "wh_conf.h"

typedef enum {
    WH_DIR_BOOL = 1,        /* int, 0 or 1 */
    WH_DIR_INT,             /* long in min..max */
    WH_DIR_SECONDS,         /* double in min..max, an integer or a float */
    WH_DIR_STRING,          /* char *, a copy; NULL when absent without a default */
    WH_DIR_PATH,            /* char *, a file name under the prefix (wh_cycle_path) */
    WH_DIR_URL_PATH,        /* char *, "/" added in front when missing (spec 4.1);
                             * "" is absent, as in V2Ray */
    WH_DIR_ENUM,            /* int, the index in values (case-insensitive) */
    WH_DIR_LIST,            /* wh_str_list_t: a string split at every ',', or a
                             * list of strings; empty: the default alone */
    WH_DIR_GROUP,           /* a nested group read with its own table into the
                             * same struct; no field of its own */
    WH_DIR_CUSTOM,          /* handler reads it: called with the parent group
                             * (NULL when absent) whether or not it is there */
    WH_DIR_MODULE,          /* accepted here, read by the owner's code after */
    WH_DIR_CLIENT           /* a client-only setting: accepted with a warning */
} wh_dir_type_e;

typedef struct {
    char **v;
    int n;
} wh_str_list_t;

typedef struct wh_directive_s wh_directive_t;

/* WH_OK or WH_DECLINED (absent) to go on, WH_ERROR recorded in cf. */
typedef int (*wh_dir_handler_pt)(wh_conf_t *cf, const config_setting_t *group,
                                 const wh_directive_t *d, void *field);

struct wh_directive_s {
    const char *name;
    wh_dir_type_e type;
    size_t offset;                      /* of the field in the conf struct */
    double min, max;                    /* INT, SECONDS */
    double dflt;                        /* BOOL, INT, SECONDS, ENUM */
    const char *dflt_str;               /* STRING, PATH, URL_PATH, LIST */
    const char *const *values;          /* ENUM, NULL-terminated */
    const char *what;                   /* ENUM: "unknown <what> \"x\" (a or b)" */
    const wh_directive_t *group;        /* GROUP */
    wh_dir_handler_pt handler;          /* CUSTOM */
};

#define wh_null_directive { .name = NULL }

/* Applies table's defaults to conf, then reads group (NULL: absent, only
 * the defaults and the CUSTOM handlers run). WH_OK or WH_ERROR recorded in
 * cf; conf is then to be freed with wh_directives_free() either way. */
int wh_directives_apply(wh_conf_t *cf, const config_setting_t *group,
                        const wh_directive_t *table, void *conf);

/* Frees the strings and lists the table put in conf, not conf itself. */
void wh_directives_free(const wh_directive_t *table, void *conf);

#endif
