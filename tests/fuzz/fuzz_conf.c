/*
 * fuzz_conf.c -- the configuration loader (src/cycle/wh_cycle.c,
 * wh_conf.c and every module's parse) on the input as a wharf.conf.
 *
 * It goes through a file, as the master reads it (libconfig resolves
 * @include against the file's folder, and errors carry FILE:LINE): one
 * private folder for the whole run, one file rewritten per input. A load
 * must either succeed with no error text or fail with one; either way the
 * cycle is freed, so a leak anywhere in the parse is a finding (except
 * libconfig's own scanner leak, see lsan.supp). Certificate and include
 * paths under /dev, /proc and /sys are skipped: reading /dev/zero as PEM
 * would never end, and that is not wharf's parser.
 *
 * Speed: libconfig's scanner leaks on many mutated inputs, and libFuzzer
 * answers every input that ends with more mallocs than frees with a full
 * LeakSanitizer pass. That pass walks every chunk the allocator ever handed
 * out, and ASan's 256 MiB quarantine of freed chunks made that almost all
 * of the time (about 300 inputs/s). Leak checks stay on per input, so a
 * wharf leak is still reported with its input; the quarantine is cut to
 * 8 MiB instead, still hundreds of parses' worth of freed memory for
 * use-after-free to land in (about 6x faster). libFuzzer itself gives up
 * per-input leak checks after 1000 passes that found nothing to report;
 * the check at exit stays.
 */
#include "wh_cycle.h"
#include "wh_log.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[64], file[96];

/* read by the ASan runtime at start; ASAN_OPTIONS still overrides it */
const char *
__asan_default_options(void)
{
    return "quarantine_size_mb=8";
}

static void
remove_dir(void)
{
    unlink(file);
    rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    strcpy(dir, "/tmp/wh-fuzz-conf-XXXXXX");
    if (mkdtemp(dir) == NULL) abort();
    snprintf(file, sizeof(file), "%s/wharf.conf", dir);
    atexit(remove_dir);
    wh_log_open("/dev/null");
    wh_log_level = WH_LOG_DEBUG;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wh_conf_t cf;
    wh_cycle_t *c;
    FILE *f;

    if (memmem(data, size, "/dev", 4) || memmem(data, size, "/proc", 5)
        || memmem(data, size, "/sys", 4))
    {
        return 0;
    }
    f = fopen(file, "w");
    if (f == NULL || fwrite(data, 1, size, f) != size || fclose(f) != 0) abort();

    c = wh_cycle_load(&cf, dir, file);
    if ((c == NULL) != (cf.error[0] != '\0')) abort();
    wh_cycle_free(c);
    return 0;
}
