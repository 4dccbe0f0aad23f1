/*
 * wh_steer.c -- the idle-worker steering program and its shared words (see
 * wh_steer.h).
 *
 * The program is written here as eBPF instructions, not compiled from C:
 * it is some eighty of them, and a BPF compiler and loader library would be
 * build dependencies for that. It reads the sleeping workers' word (the
 * accepting workers' when none sleeps) and rotates it by the
 * connection's hash modulo the number of sockets, so that the search starts
 * at the worker the hash picks; keeps the first set bit from there (round
 * to the first socket), finds that bit's index by halving (eBPF has no
 * count-trailing-zeros), and asks bpf_sk_select_reuseport() for that
 * worker's socket, having first counted the connection against that socket
 * in the listener's row of counts after the words, for another worker to
 * take it (wh_steer_marked). With no bit set, or a worker without a socket
 * in the array, it returns SK_PASS having chosen nothing, and the kernel
 * hashes.
 */
#include "wh_steer.h"
#include "wh_cycle.h"
#include "wh_log.h"

#include <linux/bpf.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

#define INSN(c, d, s, o, i) \
    ((struct bpf_insn) { .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV_REG(d, s)       INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV_IMM(d, i)       INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define ALU_IMM(op, d, i)   INSN(BPF_ALU64 | (op) | BPF_K, d, 0, 0, i)
#define ALU_REG(op, d, s)   INSN(BPF_ALU64 | (op) | BPF_X, d, s, 0, 0)
#define NEG(d)              INSN(BPF_ALU64 | BPF_NEG, d, 0, 0, 0)
#define LDX(sz, d, s, o)    INSN(BPF_LDX | BPF_MEM | (sz), d, s, o, 0)
#define STX(sz, d, s, o)    INSN(BPF_STX | BPF_MEM | (sz), d, s, o, 0)
#define ST_IMM(sz, d, o, i) INSN(BPF_ST | BPF_MEM | (sz), d, 0, o, i)
#define JEQ_IMM(d, i, o)    INSN(BPF_JMP | BPF_JEQ | BPF_K, d, 0, o, i)
#define JNE_IMM(d, i, o)    INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define JLT_IMM(d, i, o)    INSN(BPF_JMP | BPF_JLT | BPF_K, d, 0, o, i)
#define CALL(f)             INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT()              INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
/* a map's fd into a register: one instruction in two slots */
#define LD_MAP(d, fd)       INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd)
#define LD_MAP_2ND          INSN(0, 0, 0, 0, 0)

#define XADD(sz, d, s, o)   INSN(BPF_STX | BPF_ATOMIC | (sz), d, s, o, BPF_ADD)

#define MARKS_AT            (2 * sizeof(uint64_t))  /* in the map's value */
#define ROW_SIZE            (WH_STEER_MAX * sizeof(uint32_t))
#define ROWS_MAX            126     /* an instruction's offset is 16 bits */

static long
sys_bpf(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static int
map_create(uint32_t type, uint32_t value_size, uint32_t entries, uint32_t flags)
{
    union bpf_attr a;

    memset(&a, 0, sizeof(a));
    a.map_type = type;
    a.key_size = sizeof(uint32_t);
    a.value_size = value_size;
    a.max_entries = entries;
    a.map_flags = flags;
    return (int) sys_bpf(BPF_MAP_CREATE, &a);
}

void
wh_steer_init(wh_steer_t *s, int workers, int listeners)
{
    size_t page = (size_t) sysconf(_SC_PAGESIZE), value;
    void *p;

    *s = (wh_steer_t) { .words = NULL, .map_fd = -1 };
    if (workers < 2 || workers > WH_STEER_MAX) {
        return;     /* nothing to choose from; or more than the word holds */
    }
    s->rows = listeners < ROWS_MAX ? listeners : ROWS_MAX;
    value = MARKS_AT + (size_t) s->rows * ROW_SIZE;
    s->map_fd = map_create(BPF_MAP_TYPE_ARRAY, (uint32_t) value, 1, BPF_F_MMAPABLE);
    if (s->map_fd == -1) {
        wh_log(WH_LOG_INFO, "no BPF map for steering connections to idle workers (%s): "
               "connections go to workers by hash", strerror(errno));
        return;
    }
    s->size = (value + page - 1) / page * page;
    p = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->map_fd, 0);
    if (p == MAP_FAILED) {
        wh_log(WH_LOG_INFO, "mmap() of the steering map failed (%s): connections go to "
               "workers by hash", strerror(errno));
        close(s->map_fd);
        s->map_fd = -1;
        return;
    }
    s->words = p;
    s->marks = (volatile uint32_t *) ((char *) p + MARKS_AT);
}

void
wh_steer_free(wh_steer_t *s)
{
    if (s->words != NULL) {
        munmap((void *) s->words, s->size);
    }
    if (s->map_fd != -1) {
        close(s->map_fd);
    }
    *s = (wh_steer_t) { .words = NULL, .map_fd = -1 };
}

/* r1 &= the low nsocks bits: a bit of a worker without a socket is not
 * one to search for */
static int
keep_bits(struct bpf_insn *code, int n, int nsocks)
{
    if (nsocks < WH_STEER_MAX) {
        code[n++] = ALU_IMM(BPF_LSH, BPF_REG_1, WH_STEER_MAX - nsocks);
        code[n++] = ALU_IMM(BPF_RSH, BPF_REG_1, WH_STEER_MAX - nsocks);
    }
    return n;
}

/* row: the listener's row of marks, -1 for none */
static int
prog_load(int words_fd, int socks_fd, int nsocks, int row)
{
    struct bpf_insn code[88];     /* 79 at most */
    int n = 0, to_pass[2], asleep, shift, i;
    union bpf_attr a;
    char log[4096];

    /* r6: ctx; the stack: the array key at -4, the socket index at -8 */
    code[n++] = MOV_REG(BPF_REG_6, BPF_REG_1);
    code[n++] = ST_IMM(BPF_W, BPF_REG_10, -4, 0);
    code[n++] = LD_MAP(BPF_REG_1, words_fd);
    code[n++] = LD_MAP_2ND;
    code[n++] = MOV_REG(BPF_REG_2, BPF_REG_10);
    code[n++] = ALU_IMM(BPF_ADD, BPF_REG_2, -4);
    code[n++] = CALL(BPF_FUNC_map_lookup_elem);
    to_pass[0] = n;
    code[n++] = JEQ_IMM(BPF_REG_0, 0, 0);
    code[n++] = LDX(BPF_DW, BPF_REG_1, BPF_REG_0, WH_STEER_ASLEEP * 8);
    n = keep_bits(code, n, nsocks);
    asleep = n;
    code[n++] = JNE_IMM(BPF_REG_1, 0, 0);
    code[n++] = LDX(BPF_DW, BPF_REG_1, BPF_REG_0, WH_STEER_ACCEPTING * 8);   /* none sleeps */
    n = keep_bits(code, n, nsocks);
    to_pass[1] = n;
    code[n++] = JEQ_IMM(BPF_REG_1, 0, 0);               /* none accepts */
    code[asleep].off = (short) (n - asleep - 1);

    /* r5: the socket the search starts at, the hash's; r1: the word
     * rotated right by r5 within its nsocks bits */
    code[n++] = LDX(BPF_W, BPF_REG_5, BPF_REG_6, offsetof(struct sk_reuseport_md, hash));
    code[n++] = ALU_IMM(BPF_MOD, BPF_REG_5, nsocks);
    code[n++] = MOV_REG(BPF_REG_2, BPF_REG_1);
    code[n++] = ALU_REG(BPF_RSH, BPF_REG_2, BPF_REG_5);
    code[n++] = MOV_IMM(BPF_REG_3, nsocks);
    code[n++] = ALU_REG(BPF_SUB, BPF_REG_3, BPF_REG_5);
    code[n++] = ALU_REG(BPF_LSH, BPF_REG_1, BPF_REG_3);   /* by 64 is by 0 */
    code[n++] = ALU_REG(BPF_OR, BPF_REG_1, BPF_REG_2);
    n = keep_bits(code, n, nsocks);

    /* r3: the index of its lowest set bit, by halving */
    code[n++] = MOV_REG(BPF_REG_2, BPF_REG_1);
    code[n++] = NEG(BPF_REG_2);
    code[n++] = ALU_REG(BPF_AND, BPF_REG_1, BPF_REG_2);   /* that bit alone */
    code[n++] = MOV_IMM(BPF_REG_3, 0);
    for (shift = 32; shift >= 1; shift /= 2) {
        code[n++] = MOV_REG(BPF_REG_4, BPF_REG_1);
        code[n++] = ALU_IMM(BPF_RSH, BPF_REG_4, shift);
        code[n++] = JEQ_IMM(BPF_REG_4, 0, 2);
        code[n++] = ALU_IMM(BPF_ADD, BPF_REG_3, shift);
        code[n++] = MOV_REG(BPF_REG_1, BPF_REG_4);
    }
    code[n++] = ALU_REG(BPF_ADD, BPF_REG_3, BPF_REG_5);    /* unrotated */
    code[n++] = JLT_IMM(BPF_REG_3, nsocks, 1);
    code[n++] = ALU_IMM(BPF_SUB, BPF_REG_3, nsocks);

    /* the connection may wait behind its worker's work, or for a CPU for
     * its worker being woken: the count lets another take it
     * (wh_handshake.c); r0 is still the value */
    if (row >= 0) {
        code[n++] = ALU_IMM(BPF_AND, BPF_REG_3, WH_STEER_MAX - 1);   /* for the verifier */
        code[n++] = MOV_REG(BPF_REG_2, BPF_REG_3);
        code[n++] = ALU_IMM(BPF_LSH, BPF_REG_2, 2);
        code[n++] = ALU_REG(BPF_ADD, BPF_REG_2, BPF_REG_0);
        code[n++] = MOV_IMM(BPF_REG_1, 1);
        code[n++] = XADD(BPF_W, BPF_REG_2, BPF_REG_1, (short) (MARKS_AT + row * ROW_SIZE));
    }

    code[n++] = STX(BPF_W, BPF_REG_10, BPF_REG_3, -8);
    code[n++] = MOV_REG(BPF_REG_1, BPF_REG_6);
    code[n++] = LD_MAP(BPF_REG_2, socks_fd);
    code[n++] = LD_MAP_2ND;
    code[n++] = MOV_REG(BPF_REG_3, BPF_REG_10);
    code[n++] = ALU_IMM(BPF_ADD, BPF_REG_3, -8);
    code[n++] = MOV_IMM(BPF_REG_4, 0);
    code[n++] = CALL(BPF_FUNC_sk_select_reuseport);
    for (i = 0; i < 2; i++) {
        code[to_pass[i]].off = (short) (n - to_pass[i] - 1);
    }
    code[n++] = MOV_IMM(BPF_REG_0, SK_PASS);
    code[n++] = EXIT();

    memset(&a, 0, sizeof(a));
    a.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
    a.insns = (uint64_t) (uintptr_t) code;
    a.insn_cnt = (uint32_t) n;
    a.license = (uint64_t) (uintptr_t) "GPL";   /* it gates only helpers this does not call */
    i = (int) sys_bpf(BPF_PROG_LOAD, &a);
    if (i == -1 && errno != EPERM) {
        /* again, for the verifier's reason (its last lines): not the first
         * time, as its log of a success would not fit the buffer, and
         * that alone fails a load */
        int err = errno;
        size_t len;

        a.log_buf = (uint64_t) (uintptr_t) log;
        a.log_size = sizeof(log);
        a.log_level = 1;
        log[0] = '\0';
        if (sys_bpf(BPF_PROG_LOAD, &a) == -1 && (len = strlen(log)) > 0) {
            wh_log(WH_LOG_WARN, "the steering program was refused: %s",
                   log + (len > 300 ? len - 300 : 0));
        }
        errno = err;
    }
    return i;
}

void
wh_steer_attach(wh_steer_t *s, wh_listener_t *ls, int row, int workers)
{
    int socks, prog, k, n = ls->nfds < workers ? ls->nfds : workers;
    union bpf_attr a;
    uint64_t fd;

    if (s->words == NULL || n < 2) {
        return;
    }
    socks = map_create(BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint64_t), (uint32_t) n, 0);
    if (socks == -1) {
        wh_log(WH_LOG_INFO, "no socket map for steering %s's connections to idle workers (%s): "
               "they go to workers by hash", ls->addr_text, strerror(errno));
        return;
    }
    for (k = 0; k < n; k++) {
        uint32_t key = (uint32_t) k;

        fd = (uint64_t) ls->fds[k];
        memset(&a, 0, sizeof(a));
        a.map_fd = (uint32_t) socks;
        a.key = (uint64_t) (uintptr_t) &key;
        a.value = (uint64_t) (uintptr_t) &fd;
        a.flags = BPF_ANY;
        if (sys_bpf(BPF_MAP_UPDATE_ELEM, &a) == -1) {
            wh_log(WH_LOG_INFO, "steering %s's connections to idle workers failed at socket %d "
                   "(%s): they go to workers by hash", ls->addr_text, k, strerror(errno));
            close(socks);
            return;
        }
    }
    prog = prog_load(s->map_fd, socks, n, row < s->rows ? row : -1);
    close(socks);   /* the program holds it */
    if (prog == -1) {
        wh_log(WH_LOG_INFO, "no program for steering %s's connections to idle workers (%s): "
               "they go to workers by hash", ls->addr_text, strerror(errno));
        return;
    }
    if (setsockopt(ls->fds[0], SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF, &prog, sizeof(prog)) == -1) {
        wh_log(WH_LOG_INFO, "attaching the idle-worker steering program to %s failed (%s): "
               "connections go to workers by hash", ls->addr_text, strerror(errno));
    }
    close(prog);    /* the group holds it */
}

int
wh_steer_marked(const wh_steer_t *s, int row, int self, int nsocks, uint32_t *count)
{
    volatile uint32_t *m;
    uint64_t pair;
    int k;

    if (row >= s->rows) {
        return -1;
    }
    m = &s->marks[row * WH_STEER_MAX];
    for (k = 0; k < nsocks && k < WH_STEER_MAX; k++) {
        if (k % 2 == 0) {
            memcpy(&pair, (const uint32_t *) m + k, sizeof(pair));
            if (pair == 0) {
                k++;        /* neither of these two */
                continue;
            }
        }
        if (m[k] != 0 && k != self
            && (*count = __atomic_exchange_n(&m[k], 0, __ATOMIC_RELAXED)) != 0)
        {
            return k;
        }
    }
    return -1;
}
