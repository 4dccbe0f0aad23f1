/*
 * wh_stats.c -- the shared-memory counters (see wh_stats.h).
 *
 * The segment is a named POSIX shm object so that `wharf -S`, a separate
 * process, can map it read-only; the master maps it before forking, so every
 * worker shares the same pages. Only touched pages become resident: the
 * table is sized for the worst case but costs what is used.
 */
#include "wh_stats.h"
#include "wh_log.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <time.h>
#include <sys/mman.h>
#include <unistd.h>

#define WH_STATS_MAGIC 0x77686633u   /* "whf3": with the master's counters */

typedef struct {
    uint32_t magic;
    uint32_t size;
    uint8_t slot_used[WH_STATS_MAX_SLOTS];
    uint64_t seed;
    wh_stats_master_t master;
    struct {
        char tag[WH_STATS_TAG_LEN];
    } listeners[WH_STATS_MAX_LISTENERS];
    wh_stats_counters_t c[WH_STATS_MAX_SLOTS][WH_STATS_MAX_LISTENERS];
    uint32_t cells[WH_STATS_MAX_SLOTS][WH_STATS_CELLS];
    struct {
        char group[WH_STATS_TAG_LEN];
        char member[WH_STATS_MEMBER_LEN];
    } upstreams[WH_STATS_MAX_UPSTREAMS];
    wh_stats_upstream_t u[WH_STATS_MAX_SLOTS][WH_STATS_MAX_UPSTREAMS];
} wh_stats_shm_t;

const char *const wh_drop_cause_names[WH_DROP_NCAUSES] = {
    "auth", "malformed", "refused", "send"
};

const char *const wh_close_cause_names[WH_CLOSE_NCAUSES] = {
    "done", "timeout", "upstream", "bad_input", "error", "shutdown", "limit"
};

static wh_stats_shm_t *shm;
static char shm_name[64];

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
name_for(pid_t master)
{
    snprintf(shm_name, sizeof(shm_name), "/wharf.%d", (int) master);
}

/* The objects of masters that died without removing theirs (kill -9):
 * their workers, no longer root, cannot. */
static void
remove_stale(void)
{
    DIR *d = opendir("/dev/shm");
    struct dirent *e;
    char name[300];
    long pid;

    if (d == NULL) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        if (sscanf(e->d_name, "wharf.%ld", &pid) == 1 && pid > 0
            && kill((pid_t) pid, 0) == -1 && errno == ESRCH)
        {
            snprintf(name, sizeof(name), "/%s", e->d_name);
            shm_unlink(name);
        }
    }
    closedir(d);
}

int
wh_stats_create(pid_t master)
{
    int fd;

    remove_stale();
    name_for(master);
    shm_unlink(shm_name);
    fd = shm_open(shm_name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd == -1 || ftruncate(fd, sizeof(wh_stats_shm_t)) == -1) {
        wh_log(WH_LOG_EMERG, "shm_open(\"%s\") failed (%s)", shm_name, strerror(errno));
        if (fd != -1) close(fd);
        return WH_ERROR;
    }
    shm = mmap(NULL, sizeof(wh_stats_shm_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (shm == MAP_FAILED) {
        shm = NULL;
        wh_log(WH_LOG_EMERG, "mmap(\"%s\") failed (%s)", shm_name, strerror(errno));
        return WH_ERROR;
    }
    shm->magic = WH_STATS_MAGIC;
    shm->size = sizeof(wh_stats_shm_t);
    shm->slot_used[0] = 1;      /* the retired workers' totals */
    shm->master.start_ms = now_ms();
    /* unpredictable, so no one can aim a collision at someone else's address */
    if (getrandom(&shm->seed, sizeof(shm->seed), 0) != sizeof(shm->seed)) {
        shm->seed = (uint64_t) time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t) master;
    }
    return WH_OK;
}

void
wh_stats_destroy(void)
{
    if (shm != NULL) {
        munmap(shm, sizeof(*shm));
        shm = NULL;
        shm_unlink(shm_name);
    }
}

int
wh_stats_listener(const char *tag)
{
    int i, free_col = -1;

    for (i = 0; i < WH_STATS_MAX_LISTENERS; i++) {
        if (strcmp(shm->listeners[i].tag, tag) == 0) {
            return i;
        }
        if (free_col == -1 && shm->listeners[i].tag[0] == '\0') {
            free_col = i;
        }
    }
    if (free_col != -1) {
        snprintf(shm->listeners[free_col].tag, WH_STATS_TAG_LEN, "%s", tag);
    }
    return free_col;
}

int
wh_stats_upstream(const char *group, const char *member)
{
    int i;

    for (i = 0; i < WH_STATS_MAX_UPSTREAMS; i++) {
        if (shm->upstreams[i].group[0] == '\0') {
            snprintf(shm->upstreams[i].group, WH_STATS_TAG_LEN, "%s", group);
            snprintf(shm->upstreams[i].member, WH_STATS_MEMBER_LEN, "%s", member);
            return i;
        }
        if (strcmp(shm->upstreams[i].group, group) == 0
            && strcmp(shm->upstreams[i].member, member) == 0)
        {
            return i;
        }
    }
    return -1;
}

int
wh_stats_slot_alloc(void)
{
    int i;

    for (i = 1; i < WH_STATS_MAX_SLOTS; i++) {
        if (!shm->slot_used[i]) {
            shm->slot_used[i] = 1;
            memset(shm->c[i], 0, sizeof(shm->c[i]));
            memset(shm->cells[i], 0, sizeof(shm->cells[i]));
            memset(shm->u[i], 0, sizeof(shm->u[i]));
            return i;
        }
    }
    return -1;
}

void
wh_stats_slot_retire(int slot)
{
    int l, k;

    if (slot <= 0 || !shm->slot_used[slot]) {
        return;
    }
    for (l = 0; l < WH_STATS_MAX_LISTENERS; l++) {
        uint64_t *from = (uint64_t *) &shm->c[slot][l], *to = (uint64_t *) &shm->c[0][l];

        /* streams a dead worker still held were cut */
        shm->c[0][l].closed[WH_CLOSE_ERROR] += shm->c[slot][l].active;
        shm->c[slot][l].active = 0;
        shm->c[slot][l].connections_active = 0;
        shm->c[slot][l].clients = 0;
        for (k = 0; k < WH_STATS_NFIELDS; k++) {
            to[k] += from[k];
        }
    }
    for (l = 0; l < WH_STATS_MAX_UPSTREAMS; l++) {
        shm->u[0][l].connects += shm->u[slot][l].connects;
        shm->u[0][l].connect_failures += shm->u[slot][l].connect_failures;
    }
    /* a dead worker's clients are gone: they no longer count against a cap */
    memset(shm->cells[slot], 0, sizeof(shm->cells[slot]));
    shm->slot_used[slot] = 0;
}

wh_stats_master_t *
wh_stats_master(void)
{
    return &shm->master;
}

wh_stats_counters_t *
wh_stats_counters(int slot, int listener)
{
    return &shm->c[slot][listener];
}

wh_stats_upstream_t *
wh_stats_upstream_counters(int slot, int member)
{
    return &shm->u[slot][member];
}

uint32_t *
wh_stats_cells(int slot)
{
    return shm->cells[slot];
}

unsigned
wh_stats_cell_sum(uint32_t cell)
{
    unsigned sum = 0;
    int s;

    for (s = 1; s < WH_STATS_MAX_SLOTS; s++) {
        if (shm->slot_used[s]) sum += __atomic_load_n(&shm->cells[s][cell], __ATOMIC_RELAXED);
    }
    return sum;
}

uint64_t
wh_stats_clients(int listener)
{
    uint64_t sum = 0;
    int s;

    for (s = 1; s < WH_STATS_MAX_SLOTS; s++) {
        if (shm->slot_used[s]) sum += __atomic_load_n(&shm->c[s][listener].clients, __ATOMIC_RELAXED);
    }
    return sum;
}

uint64_t
wh_stats_seed(void)
{
    return shm->seed;
}

int
wh_stats_attach(pid_t master)
{
    int fd;
    void *p;

    name_for(master);
    fd = shm_open(shm_name, O_RDONLY | O_CLOEXEC, 0);
    if (fd == -1) {
        return WH_ERROR;
    }
    p = mmap(NULL, sizeof(wh_stats_shm_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED || ((wh_stats_shm_t *) p)->magic != WH_STATS_MAGIC) {
        errno = EINVAL;
        return WH_ERROR;
    }
    shm = p;
    return WH_OK;
}

void
wh_stats_foreach(void (*fn)(const char *tag, const wh_stats_counters_t *sum, void *arg), void *arg)
{
    int l, s, k;

    for (l = 0; l < WH_STATS_MAX_LISTENERS; l++) {
        wh_stats_counters_t sum;

        if (shm->listeners[l].tag[0] == '\0') {
            continue;
        }
        memset(&sum, 0, sizeof(sum));
        for (s = 0; s < WH_STATS_MAX_SLOTS; s++) {
            const uint64_t *c = (const uint64_t *) &shm->c[s][l];
            if (!shm->slot_used[s]) continue;
            for (k = 0; k < WH_STATS_NFIELDS; k++) {
                ((uint64_t *) &sum)[k] += __atomic_load_n(&c[k], __ATOMIC_RELAXED);
            }
        }
        fn(shm->listeners[l].tag, &sum, arg);
    }
}

void
wh_stats_foreach_upstream(void (*fn)(const char *group, const char *member,
                                     const wh_stats_upstream_sum_t *sum, void *arg),
                          void *arg)
{
    uint64_t now = now_ms();
    int m, s;

    /* columns are taken in order and never given back */
    for (m = 0; m < WH_STATS_MAX_UPSTREAMS && shm->upstreams[m].group[0] != '\0'; m++) {
        wh_stats_upstream_sum_t sum = { 0, 0, 0 };

        for (s = 0; s < WH_STATS_MAX_SLOTS; s++) {
            const wh_stats_upstream_t *u = &shm->u[s][m];
            if (!shm->slot_used[s]) continue;
            sum.connects += __atomic_load_n(&u->connects, __ATOMIC_RELAXED);
            sum.connect_failures += __atomic_load_n(&u->connect_failures, __ATOMIC_RELAXED);
            sum.down += __atomic_load_n(&u->down_until, __ATOMIC_RELAXED) > now;
        }
        fn(shm->upstreams[m].group, shm->upstreams[m].member, &sum, arg);
    }
}
