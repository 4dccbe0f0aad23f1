/*
 * wh_conf.c -- typed reads of libconfig settings (see wh_conf.h).
 *
 * Messages follow nginx: the directive in quotes, then what is wrong, then
 * " in FILE:LINE". The path of a nested setting is printed in dotted form
 * ("listeners.[0].port" would be unreadable; "port" plus the line is what
 * an operator needs).
 */
#include "wh_conf.h"
#include "wh_log.h"

#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

static void
conf_vmessage(wh_conf_t *cf, const config_setting_t *s, char *buf, size_t size,
              const char *fmt, va_list ap)
{
    const char *file = s ? config_setting_source_file(s) : NULL;
    int n;

    n = vsnprintf(buf, size, fmt, ap);
    if (n < 0 || (size_t) n >= size) {
        return;
    }
    snprintf(buf + n, size - n, " in %s:%d", file ? file : cf->file,
             s ? (int) config_setting_source_line(s) : 0);
}

/* Line `line` of file, blanks around it and comments after it cut, at most
 * size - 1 bytes (then "..." ends it); NULL when the file has no such line. */
static const char *
source_line(const char *file, int line, char *buf, size_t size)
{
    FILE *f = fopen(file, "r");
    const char *found = NULL;
    char text[1024];
    size_t n;
    char *p;
    int i;

    if (f == NULL) {
        return NULL;
    }
    /* a line longer than text comes in pieces: only a line feed ends one */
    for (i = 1; fgets(text, sizeof(text), f) != NULL; i += strchr(text, '\n') != NULL) {
        if (i < line) {
            continue;
        }
        text[strcspn(text, "#\r\n")] = '\0';
        for (p = text; *p == ' ' || *p == '\t'; p++) { /* void */ }
        for (n = strlen(p); n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'); n--) { /* void */ }
        p[n] = '\0';
        if (n >= size) {
            snprintf(buf, size, "%.*s...", (int) size - 4, p);
        } else {
            snprintf(buf, size, "%s", p);
        }
        found = buf;
        break;
    }
    fclose(f);
    return found;
}

/*
 * libconfig 1.5 opens an @include with fopen() and hands it to its flex
 * scanner, which calls exit(2) when a read fails: a directory (also what an
 * empty name or one cut short by a NUL byte names) would end the master, on
 * a reload too, and a FIFO would block it. So every include, and theirs in
 * turn, is looked at first, found where libconfig will look: the name after
 * the configuration file's folder, any leading '/' dropped. The syntax is
 * the scanner's: at a line's start, blanks, "@include", blanks, a string
 * in which only \\ and \" are escapes; a NUL ends the name. A line in a
 * block comment is taken too, which costs at most a refusal of a comment
 * that names something other than a file. A name that is not there is
 * refused here as well, with the path that was tried: libconfig says only
 * "cannot open include file", and an absolute name is not where it looks.
 */
static int
check_includes(wh_conf_t *cf, const char *dir, const char *file, int depth)
{
    char *text, *p, *end, *name, *path;
    size_t len;
    int line, rc;
    struct stat st;
    FILE *f;

    f = fopen(file, "r");
    if (f == NULL || fstat(fileno(f), &st) == -1 || !S_ISREG(st.st_mode)) {
        if (f != NULL) {
            fclose(f);
        }
        return WH_OK;       /* libconfig says what is wrong, in its words */
    }
    text = wh_xalloc(st.st_size + 1);
    len = fread(text, 1, st.st_size, f);
    fclose(f);
    end = text + len;
    name = wh_xalloc(len + 1);
    rc = WH_OK;

    for (p = text, line = 1; p < end && rc == WH_OK; line++) {
        char *eol = memchr(p, '\n', end - p), *q = p, *o = name;
        int at = line;

        eol = eol ? eol + 1 : end;
        while (q < end && (*q == ' ' || *q == '\t')) q++;
        if ((size_t) (end - q) < 9 || memcmp(q, "@include", 8) != 0
            || (q[8] != ' ' && q[8] != '\t'))
        {
            p = eol;
            continue;
        }
        for (q += 8; q < end && (*q == ' ' || *q == '\t'); q++) { /* void */ }
        if (q == end || *q != '"') {
            p = eol;
            continue;
        }
        for (q++; q < end && *q != '"'; q++) {
            if (*q == '\\' && q + 1 < end && (q[1] == '\\' || q[1] == '"')) {
                q++;
            }
            line += *q == '\n';
            *o++ = *q;
        }
        *o = '\0';
        if (q == end) {
            break;          /* an unended string: libconfig's syntax error */
        }
        /* no other include starts on this line: "@include" must begin one */
        eol = memchr(q, '\n', end - q);
        p = eol ? eol + 1 : end;

        path = wh_xalloc(strlen(dir) + strlen(name) + 2);
        sprintf(path, "%s/%s", dir, name[0] == '/' ? name + 1 : name);
        if (stat(path, &st) == -1) {
            wh_conf_error_at(cf, file, at, "@include \"%s\": stat() \"%s\" failed (%s)",
                             name, path, strerror(errno));
            rc = WH_ERROR;
        } else if (!S_ISREG(st.st_mode)) {
            wh_conf_error_at(cf, file, at, "@include \"%s\": \"%s\" is not a regular file",
                             name, path);
            rc = WH_ERROR;
        } else if (depth > 10) {
            /* libconfig's limit; stopping at it also keeps a file that
             * includes itself twice from taking 2^10 reads */
            wh_conf_error_at(cf, file, at, "@include \"%s\": includes nest more than 10 deep",
                             name);
            rc = WH_ERROR;
        } else {
            rc = check_includes(cf, dir, path, depth + 1);
        }
        free(path);
    }
    free(name);
    free(text);
    return rc;
}

int
wh_conf_read(wh_conf_t *cf, config_t *cfg)
{
    char *dir, near[64];
    const char *file, *p;
    struct stat st;
    int line, err;

    /* libconfig opens a directory and reports the read's failure with the
     * errno of something else */
    err = stat(cf->file, &st) == -1 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
    if (err != 0) {
        snprintf(cf->error, sizeof(cf->error), "open() \"%s\" failed (%s)", cf->file,
                 strerror(err));
        return WH_ERROR;
    }
    dir = wh_xstrdup(cf->file);
    p = dirname(dir);
    config_set_include_dir(cfg, p);
    err = check_includes(cf, p, cf->file, 1);
    free(dir);
    if (err != WH_OK) {
        return WH_ERROR;
    }
    if (config_read_file(cfg, cf->file)) {
        return WH_OK;
    }
    if (config_error_type(cfg) == CONFIG_ERR_FILE_IO) {
        snprintf(cf->error, sizeof(cf->error), "open() \"%s\" failed (%s)", cf->file,
                 strerror(errno));
        return WH_ERROR;
    }
    file = config_error_file(cfg) ?: cf->file;
    line = config_error_line(cfg);
    p = source_line(file, line, near, sizeof(near));
    if (p == NULL) {
        snprintf(cf->error, sizeof(cf->error), "%s at the end of the file in %s:%d",
                 config_error_text(cfg), file, line);
    } else if (p[0] == '\0') {
        snprintf(cf->error, sizeof(cf->error), "%s in %s:%d", config_error_text(cfg), file,
                 line);
    } else {
        snprintf(cf->error, sizeof(cf->error), "%s near \"%s\" in %s:%d",
                 config_error_text(cfg), p, file, line);
    }
    return WH_ERROR;
}

void
wh_conf_error(wh_conf_t *cf, const config_setting_t *s, const char *fmt, ...)
{
    va_list ap;

    if (cf->error[0] != '\0') {
        return;             /* keep the first */
    }
    va_start(ap, fmt);
    conf_vmessage(cf, s, cf->error, sizeof(cf->error), fmt, ap);
    va_end(ap);
}

void
wh_conf_error_at(wh_conf_t *cf, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (cf->error[0] != '\0') {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(cf->error, sizeof(cf->error), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t) n < sizeof(cf->error)) {
        snprintf(cf->error + n, sizeof(cf->error) - n, " in %s:%d", file, line);
    }
}

void
wh_conf_warn(wh_conf_t *cf, const config_setting_t *s, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    conf_vmessage(cf, s, msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wh_log(WH_LOG_WARN, "%s", msg);
}

static int
name_in(const char *name, const char *const *list)
{
    for (; list != NULL && *list != NULL; list++) {
        if (strcmp(name, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

int
wh_conf_check_names(wh_conf_t *cf, const config_setting_t *group,
                    const char *const *known, const char *const *ignored)
{
    int i, n = config_setting_length(group);

    for (i = 0; i < n; i++) {
        config_setting_t *s = config_setting_get_elem(group, i);
        const char *name = config_setting_name(s);

        if (name_in(name, known)) {
            continue;
        }
        if (name_in(name, ignored)) {
            wh_conf_warn(cf, s, "\"%s\" is a client-only setting, ignored", name);
            continue;
        }
        wh_conf_error(cf, s, "unknown directive \"%s\"", name);
        return WH_ERROR;
    }
    return WH_OK;
}

static const char *
type_name(int type)
{
    switch (type) {
    case CONFIG_TYPE_GROUP: return "a group";
    case CONFIG_TYPE_INT: case CONFIG_TYPE_INT64: return "an integer";
    case CONFIG_TYPE_FLOAT: return "a number";
    case CONFIG_TYPE_STRING: return "a string";
    case CONFIG_TYPE_BOOL: return "a boolean";
    case CONFIG_TYPE_ARRAY: return "an array";
    case CONFIG_TYPE_LIST: return "a list";
    }
    return "a value";
}

static config_setting_t *
member(const config_setting_t *group, const char *name)
{
    return group ? config_setting_get_member(group, name) : NULL;
}

int
wh_conf_int(wh_conf_t *cf, const config_setting_t *group, const char *name,
            long min, long max, long *out)
{
    config_setting_t *s = member(group, name);
    long long v;

    if (s == NULL) {
        return WH_DECLINED;
    }
    if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64) {
        wh_conf_error(cf, s, "\"%s\" must be an integer, not %s", name,
                      type_name(config_setting_type(s)));
        return WH_ERROR;
    }
    v = config_setting_get_int64(s);
    if (v < min || v > max) {
        wh_conf_error(cf, s, "\"%s\" must be %ld..%ld, not %lld", name, min, max, v);
        return WH_ERROR;
    }
    *out = (long) v;
    return WH_OK;
}

int
wh_conf_bool(wh_conf_t *cf, const config_setting_t *group, const char *name, int *out)
{
    config_setting_t *s = member(group, name);

    if (s == NULL) {
        return WH_DECLINED;
    }
    if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
        wh_conf_error(cf, s, "\"%s\" must be true or false, not %s", name,
                      type_name(config_setting_type(s)));
        return WH_ERROR;
    }
    *out = config_setting_get_bool(s);
    return WH_OK;
}

int
wh_conf_string(wh_conf_t *cf, const config_setting_t *group, const char *name,
               const char **out)
{
    config_setting_t *s = member(group, name);

    if (s == NULL) {
        return WH_DECLINED;
    }
    if (config_setting_type(s) != CONFIG_TYPE_STRING) {
        wh_conf_error(cf, s, "\"%s\" must be a string, not %s", name,
                      type_name(config_setting_type(s)));
        return WH_ERROR;
    }
    *out = config_setting_get_string(s);
    return WH_OK;
}

int
wh_conf_seconds(wh_conf_t *cf, const config_setting_t *group, const char *name,
                double min, double max, double *out)
{
    config_setting_t *s = member(group, name);
    double v;

    if (s == NULL) {
        return WH_DECLINED;
    }
    switch (config_setting_type(s)) {
    case CONFIG_TYPE_INT:
    case CONFIG_TYPE_INT64:
        v = (double) config_setting_get_int64(s);
        break;
    case CONFIG_TYPE_FLOAT:
        v = config_setting_get_float(s);
        break;
    default:
        wh_conf_error(cf, s, "\"%s\" must be a number of seconds, not %s", name,
                      type_name(config_setting_type(s)));
        return WH_ERROR;
    }
    if (!(v >= min && v <= max) || isnan(v)) {
        wh_conf_error(cf, s, "\"%s\" must be %g..%g seconds, not %g", name, min, max, v);
        return WH_ERROR;
    }
    *out = v;
    return WH_OK;
}

int
wh_conf_group(wh_conf_t *cf, const config_setting_t *group, const char *name,
              config_setting_t **out)
{
    config_setting_t *s = member(group, name);

    *out = NULL;
    if (s == NULL) {
        return WH_DECLINED;
    }
    if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
        wh_conf_error(cf, s, "\"%s\" must be a group { ... }, not %s", name,
                      type_name(config_setting_type(s)));
        return WH_ERROR;
    }
    *out = s;
    return WH_OK;
}
