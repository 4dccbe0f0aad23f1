/*
 * wh_affinity.c -- worker_cpu_affinity and accept_by_cpu's connection
 * steering (see wh_affinity.h).
 *
 * The steering program is classic BPF, not eBPF: it needs no privilege and
 * no map, and its one input, the CPU, is an ancillary load (SKF_AD_CPU). It
 * is a chain of compares, two instructions per worker; an index past the
 * group's end makes the kernel pick by hash, which is what a CPU without a
 * worker of its own gets.
 */
#include "wh_affinity.h"
#include "wh_cycle.h"
#include "wh_log.h"

#include <sys/socket.h>

static int
allowed_cpus(cpu_set_t *set)
{
    CPU_ZERO(set);
    if (sched_getaffinity(0, sizeof(*set), set) == -1 || CPU_COUNT(set) == 0) {
        return WH_ERROR;
    }
    return WH_OK;
}

/* "0101" into set: the last character is CPU 0 (nginx's order) */
static const char *
parse_mask(const char *text, cpu_set_t *set, const cpu_set_t *allowed)
{
    size_t len = strlen(text), i;
    cpu_set_t both;

    if (len == 0 || len > CPU_SETSIZE) {      /* 1024 */
        return "must be a mask of 1 to 1024 binary digits";
    }
    CPU_ZERO(set);
    for (i = 0; i < len; i++) {
        if (text[i] != '0' && text[i] != '1') {
            return "must be a mask of binary digits, CPU 0 last";
        }
        if (text[i] == '1') {
            CPU_SET(len - 1 - i, set);
        }
    }
    CPU_AND(&both, set, allowed);
    if (CPU_COUNT(&both) == 0) {
        return "names no CPU that wharf may run on";
    }
    return NULL;
}

static const cpu_set_t *
worker_set(const wh_affinity_t *a, int index)
{
    return &a->sets[index < a->n ? index : a->n - 1];
}

/* The one CPU of each worker, or WH_DECLINED when some worker has several
 * or shares its CPU: then there is no worker "of" a CPU to steer to. */
static int
worker_cpus(const wh_affinity_t *a, int workers, int *cpus)
{
    cpu_set_t seen;
    int k, cpu;

    if (a->n == 0) {
        return WH_DECLINED;
    }
    CPU_ZERO(&seen);
    for (k = 0; k < workers; k++) {
        if (CPU_COUNT(worker_set(a, k)) != 1) {
            return WH_DECLINED;
        }
        for (cpu = 0; !CPU_ISSET(cpu, worker_set(a, k)); cpu++) { /* void */ }
        if (CPU_ISSET(cpu, &seen)) {
            return WH_DECLINED;
        }
        CPU_SET(cpu, &seen);
        cpus[k] = cpu;
    }
    return WH_OK;
}

/* worker_cpu_affinity alone */
static int
binding_conf(wh_conf_t *cf, config_setting_t *s, int workers, wh_affinity_t *a)
{
    config_setting_t *e;
    cpu_set_t allowed;
    const char *text, *err;
    int i, cpu, k;

    if (allowed_cpus(&allowed) != WH_OK) {
        wh_conf_error(cf, s, "\"worker_cpu_affinity\": sched_getaffinity() failed (%s)",
                      strerror(errno));
        return WH_ERROR;
    }

    if (config_setting_type(s) == CONFIG_TYPE_STRING) {
        text = config_setting_get_string(s);
        if (strcmp(text, "off") == 0) {
            return WH_OK;
        }
        if (strcmp(text, "auto") != 0) {
            wh_conf_error(cf, s, "\"worker_cpu_affinity\" must be \"auto\", \"off\" or a list of "
                          "masks, not \"%s\"", text);
            return WH_ERROR;
        }
        /* worker k on the k-th allowed CPU, round again past the last */
        a->sets = wh_xalloc(workers * sizeof(cpu_set_t));
        a->n = workers;
        for (k = 0; k < workers; k++) {
            for (cpu = 0, i = k % CPU_COUNT(&allowed); ; cpu++) {
                if (CPU_ISSET(cpu, &allowed) && i-- == 0) break;
            }
            CPU_ZERO(&a->sets[k]);
            CPU_SET(cpu, &a->sets[k]);
        }
        return WH_OK;
    }

    if ((config_setting_type(s) != CONFIG_TYPE_LIST && config_setting_type(s) != CONFIG_TYPE_ARRAY)
        || config_setting_length(s) == 0)
    {
        wh_conf_error(cf, s, "\"worker_cpu_affinity\" must be \"auto\", \"off\" or a list of "
                      "masks");
        return WH_ERROR;
    }
    a->n = config_setting_length(s);
    a->sets = wh_xalloc(a->n * sizeof(cpu_set_t));
    for (i = 0; i < a->n; i++) {
        e = config_setting_get_elem(s, i);
        if (config_setting_type(e) != CONFIG_TYPE_STRING) {
            wh_conf_error(cf, e, "a \"worker_cpu_affinity\" mask must be a string, like \"0101\"");
            return WH_ERROR;
        }
        text = config_setting_get_string(e);
        if ((err = parse_mask(text, &a->sets[i], &allowed)) != NULL) {
            wh_conf_error(cf, e, "\"worker_cpu_affinity\" mask \"%.64s\" %s", text, err);
            return WH_ERROR;
        }
    }
    return WH_OK;
}

int
wh_affinity_conf(wh_conf_t *cf, const config_setting_t *root, int workers, wh_affinity_t *a)
{
    config_setting_t *s = config_setting_get_member(root, "worker_cpu_affinity");
    int *cpus, k;

    *a = (wh_affinity_t) { .n = 0 };
    if ((s != NULL && binding_conf(cf, s, workers, a) != WH_OK)
        || wh_conf_bool(cf, root, "accept_by_cpu", &a->steer) == WH_ERROR)
    {
        wh_affinity_free(a);
        return WH_ERROR;
    }
    if (!a->steer) {
        return WH_OK;
    }
    cpus = wh_xalloc(workers * sizeof(int));
    if (worker_cpus(a, workers, cpus) != WH_OK) {
        wh_conf_error(cf, config_setting_get_member(root, "accept_by_cpu"),
                      "\"accept_by_cpu\" needs \"worker_cpu_affinity\" to bind each worker "
                      "to one CPU of its own");
        free(cpus);
        wh_affinity_free(a);
        return WH_ERROR;
    }
    /* the program, made once for every listener: socket k of a group is
     * worker k's (ls->fds, in the order they joined it; sockets only ever
     * join at the end) */
    a->code = wh_xalloc((2 * workers + 2) * sizeof(*a->code));
    a->code[a->ncode++] = (struct sock_filter) BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                                                        SKF_AD_OFF + SKF_AD_CPU);
    for (k = 0; k < workers; k++) {
        a->code[a->ncode++] = (struct sock_filter) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, cpus[k], 0, 1);
        a->code[a->ncode++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, k);
    }
    a->code[a->ncode++] = (struct sock_filter) BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
    free(cpus);
    return WH_OK;
}

void
wh_affinity_free(wh_affinity_t *a)
{
    free(a->sets);
    free(a->code);
    *a = (wh_affinity_t) { .n = 0 };
}

void
wh_affinity_apply(const wh_affinity_t *a, int index)
{
    if (a->n > 0 && sched_setaffinity(0, sizeof(cpu_set_t), worker_set(a, index)) == -1) {
        wh_log(WH_LOG_ERROR, "sched_setaffinity() of worker %d failed (%s)", index,
               strerror(errno));
    }
}

void
wh_affinity_steer(const wh_affinity_t *a, wh_listener_t *ls)
{
#if defined(SO_ATTACH_REUSEPORT_CBPF) && defined(SO_DETACH_REUSEPORT_BPF)
    struct sock_fprog prog = { .len = a->ncode, .filter = a->code };
    int zero = 0;

    if (a->code == NULL || ls->nfds < 2) {
        /* a program a previous configuration attached goes; ENOENT: none
         * (the value is ignored, but the kernel wants an int's room) */
        if (setsockopt(ls->fds[0], SOL_SOCKET, SO_DETACH_REUSEPORT_BPF, &zero, sizeof(zero)) == -1
            && errno != ENOENT && errno != ENOPROTOOPT)
        {
            wh_log(WH_LOG_ERROR, "detaching the steering program of %s failed (%s)",
                   ls->addr_text, strerror(errno));
        }
        return;
    }
    if (setsockopt(ls->fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)) == -1) {
        wh_log(WH_LOG_ERROR, "attaching the steering program to %s failed (%s): connections "
               "go to workers by hash", ls->addr_text, strerror(errno));
    }
#endif
}
