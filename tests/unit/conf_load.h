/*
 * conf_load.h -- for the configuration tests: load a wharf.conf text
 * through a temporary file, as the master does, and check a refusal's
 * message and FILE:LINE. Include after cmocka.h and wh_cycle.h.
 */
#ifndef CONF_LOAD_H
#define CONF_LOAD_H

#include <unistd.h>

static char path[64];

static wh_cycle_t *
load(const char *text, wh_conf_t *cf)
{
    FILE *f;
    int fd;

    strcpy(path, "/tmp/wh-test-conf-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    return wh_cycle_load(cf, "/tmp", path);
}

/* The load fails, the message contains `what` and ends with " in FILE:line". */
static void
refused(const char *text, int line, const char *what)
{
    wh_conf_t cf;
    char where[128];
    wh_cycle_t *c = load(text, &cf);

    unlink(path);
    if (c != NULL) {
        fail_msg("accepted: %s", text);
    }
    snprintf(where, sizeof(where), " in %s:%d", path, line);
    if (strstr(cf.error, what) == NULL || strstr(cf.error, where) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\" or \"%s\"", cf.error, what, where);
    }
}

#endif
