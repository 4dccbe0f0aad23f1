/*
 * wh_steer.h -- each new TCP connection to an idle worker.
 *
 * A worker reads its own SO_REUSEPORT socket of each TCP listener
 * (wh_cycle.c), and the kernel picks the socket by a hash of the
 * connection: a connection often waits for a worker that is busy, or not
 * even on a CPU, while another sleeps with nothing to do. nginx's workers
 * share one socket and ask epoll for EPOLLEXCLUSIVE, which wakes one worker
 * that sleeps in epoll_wait(), and a worker at worker_connections takes
 * the socket out of its epoll; libev cannot ask for that flag. So each
 * worker says itself, in two 64-bit words the workers share, whether it
 * accepts (not at worker_connections, not shutting down) and whether it
 * sleeps: its bit in the first set just before its loop blocks, while it
 * accepts, and cleared as it wakes (libev's release and acquire hooks).
 * The master attaches a small eBPF program to each TCP listener's group
 * that gives a connection to the socket of a sleeping worker; when none
 * sleeps, of a worker that accepts; the hash only when none accepts.
 * Which one of them, the connection's hash says (the first from where it
 * points), not always the lowest as epoll's queue would: a proxy's
 * connections live long, and those one worker took while it happened to
 * be first would all be busy on it at once later.
 *
 * A connection the program gives a worker that is awake may wait there
 * behind that worker's work while another worker has none; one given a
 * sleeping worker waits until the worker the kernel wakes gets a CPU,
 * which on a busy machine can be a while after another worker has finished
 * its events. With one shared socket, as nginx's, whichever worker polls
 * first would take it (EPOLLEXCLUSIVE wakes one sleeper, and a busy worker
 * finds the socket ready too). So the program counts every connection
 * against the socket it picks, and a worker about to poll takes as many
 * from another's marked socket (wh_handshake.c); a woken worker that finds
 * its connection taken has had one wake-up for nothing, as nginx's can.
 * The mark is made when the SYN arrives: on loopback or a LAN the
 * connection is queued a few microseconds later; over a longer path it is
 * not there yet when the others look, they find nothing and the mark goes,
 * and that connection waits for its own worker as before.
 *
 * The words and marks are an mmap(2)ed BPF array, so setting a bit is a
 * store, not a system call. Loading the program needs root (CAP_BPF): a
 * master that cannot, or a kernel without it, leaves the hash and says so
 * once. With accept_by_cpu the CPU program (wh_affinity.h) steers
 * instead.
 */
#ifndef WH_STEER_H
#define WH_STEER_H

#include <stddef.h>
#include <stdint.h>

#define WH_STEER_MAX    64      /* workers a word has bits for */

enum { WH_STEER_ASLEEP = 0, WH_STEER_ACCEPTING = 1 };

typedef struct {
    volatile uint64_t *words;   /* bit k of each: worker k; NULL: no steering,
                                 * as with more workers than bits */
    volatile uint32_t *marks;   /* [row * WH_STEER_MAX + k]: connections the
                                 * program gave socket k of listener row since
                                 * one last looked */
    int rows;                   /* listeners with marks */
    size_t size;                /* of the mapping */
    int map_fd;                 /* their BPF map, -1 without */
} wh_steer_t;

struct wh_listener_s;

/* In the master, for a configuration of workers workers: the shared
 * words, or none where steering cannot be had (logged once). */
void wh_steer_init(wh_steer_t *s, int workers, int listeners);
void wh_steer_free(wh_steer_t *s);

/* In the master, once ls (a TCP listener) has a socket per worker:
 * attaches the program to its group; row is ls's index in its cycle, where
 * its marks go. A failure is logged: the kernel's hash still spreads the
 * connections. */
void wh_steer_attach(wh_steer_t *s, struct wh_listener_s *ls, int row, int workers);

/* In worker self before it polls: a socket of listener row's first nsocks,
 * not its own, that has a mark, or -1. The mark is taken, and *count says
 * how many connections it stood for: the caller accepts from that socket
 * up to that many times. */
int wh_steer_marked(const wh_steer_t *s, int row, int self, int nsocks, uint32_t *count);

/* The worker owning socket k of listener row is about to accept from it. */
static inline void
wh_steer_unmark(const wh_steer_t *s, int row, int k)
{
    if (row < s->rows && s->marks[row * WH_STEER_MAX + k]) {
        s->marks[row * WH_STEER_MAX + k] = 0;
    }
}

/* Worker index's bit in word (WH_STEER_ASLEEP, WH_STEER_ACCEPTING). */
static inline void
wh_steer_mark(const wh_steer_t *s, int word, int index, int on)
{
    uint64_t bit = (uint64_t) 1 << index;

    if (on && !(s->words[word] & bit)) {
        __atomic_fetch_or(&s->words[word], bit, __ATOMIC_RELAXED);
    } else if (!on && (s->words[word] & bit)) {
        __atomic_fetch_and(&s->words[word], ~bit, __ATOMIC_RELAXED);
    }
}

#endif
