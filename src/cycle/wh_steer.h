/*
 * wh_steer.h -- each new TCP connection to an idle worker.
 *
 * A worker reads its own SO_REUSEPORT socket of each TCP listener
 * (wh_cycle.c), and the kernel picks the socket by a hash of the
 * connection: a connection often waits for a worker that is busy, or not
 * even on a CPU, while another sleeps with nothing to do. nginx's workers
 * share one socket and ask epoll for EPOLLEXCLUSIVE, which wakes one worker
 * that sleeps in epoll_wait(); libev cannot ask for that flag. So each
 * worker says itself whether it sleeps: a bit in a shared 64-bit word, set
 * just before its loop blocks and cleared as it wakes (libev's release and
 * acquire hooks). The master attaches a small eBPF program to each TCP
 * listener's group that gives a connection to the socket of the lowest
 * sleeping worker, and leaves it to the hash when none sleeps.
 *
 * The word is an mmap(2)ed BPF array, so setting a bit is a store, not a
 * system call. Loading the program needs root (CAP_BPF): a master that
 * cannot, or a kernel without it, leaves the hash and says so once. With
 * accept_by_cpu the CPU program (wh_affinity.h) steers instead.
 */
#ifndef WH_STEER_H
#define WH_STEER_H

#include <stdint.h>

#define WH_STEER_MAX    64      /* workers a word has bits for */

typedef struct {
    volatile uint64_t *idle;    /* bit k: worker k sleeps; NULL: no steering */
    int map_fd;                 /* the word's BPF map, -1 without */
} wh_steer_t;

struct wh_listener_s;

/* In the master, for a configuration of workers workers: the shared word,
 * or none where steering cannot be had (logged once). */
void wh_steer_init(wh_steer_t *s, int workers);
void wh_steer_free(wh_steer_t *s);

/* In the master, once ls (a TCP listener) has a socket per worker:
 * attaches the program to its group. A failure is logged: the kernel's
 * hash still spreads the connections. */
void wh_steer_attach(wh_steer_t *s, struct wh_listener_s *ls, int workers);

/* Worker index sleeps, or does not: its bit. */
static inline void
wh_steer_idle(const wh_steer_t *s, int index, int idle)
{
    uint64_t bit = (uint64_t) 1 << index;

    if (idle) {
        __atomic_fetch_or(s->idle, bit, __ATOMIC_RELAXED);
    } else {
        __atomic_fetch_and(s->idle, ~bit, __ATOMIC_RELAXED);
    }
}

#endif
