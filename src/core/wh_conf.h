/*
 * wh_conf.h -- typed reads of libconfig settings with nginx-style errors.
 *
 * Every getter checks presence, type and range, and on failure records one
 * message ending in "in FILE:LINE" (the line of the offending setting, or of
 * the enclosing group when a required one is missing) and returns WH_ERROR.
 * Parsing stops at the first error, as nginx's does: the operator fixes one
 * line at a time and never sees an error caused by an earlier one.
 */
#ifndef WH_CONF_H
#define WH_CONF_H

#include "wh_core.h"

#include <libconfig.h>

typedef struct {
    const char *file;       /* the main file, for settings libconfig gives no file */
    const char *prefix;     /* relative file names are under it; NULL: as given */
    char error[1024];       /* the first error, "" while there is none */
} wh_conf_t;

void wh_conf_error(wh_conf_t *cf, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void wh_conf_warn(wh_conf_t *cf, const config_setting_t *s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* An error found after the settings were read, at a place kept then. */
void wh_conf_error_at(wh_conf_t *cf, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Reads cf->file into cfg (config_init'ed), its includes taken from its
 * folder. WH_ERROR with cf->error set: a directory, an unreadable file, or
 * a syntax error with the text of the line libconfig stopped at (libconfig
 * says only "syntax error"). */
int wh_conf_read(wh_conf_t *cf, config_t *cfg);

/* Refuses any name in group not listed in known (NULL-terminated). A name in
 * ignored (may be NULL) is accepted with a warning: V2Ray's client-only fields. */
int wh_conf_check_names(wh_conf_t *cf, const config_setting_t *group,
                        const char *const *known, const char *const *ignored);

/* Each returns WH_OK (found and valid, *out set), WH_DECLINED (absent, *out
 * untouched: the caller's default stands) or WH_ERROR (recorded). */
int wh_conf_int(wh_conf_t *cf, const config_setting_t *group, const char *name,
                long min, long max, long *out);
int wh_conf_bool(wh_conf_t *cf, const config_setting_t *group, const char *name, int *out);
int wh_conf_string(wh_conf_t *cf, const config_setting_t *group, const char *name,
                   const char **out);
/* An integer or a float number of seconds in [min, max]. */
int wh_conf_seconds(wh_conf_t *cf, const config_setting_t *group, const char *name,
                    double min, double max, double *out);
/* A group; *out is NULL when absent. */
int wh_conf_group(wh_conf_t *cf, const config_setting_t *group, const char *name,
                  config_setting_t **out);

#endif
