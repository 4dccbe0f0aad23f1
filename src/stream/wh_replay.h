/*
 * wh_replay.h -- a stream read again from its start: the bytes a handshake
 * already read, then the stream below (see wh_replay.c).
 */
#ifndef WH_REPLAY_H
#define WH_REPLAY_H

#include "wh_stream.h"

/* Takes lower over (closed with the new stream), with a copy of
 * read[0..n) to give first; NULL without memory, lower untouched. */
wh_stream_t *wh_replay_stream(wh_stream_t *lower, const void *read, size_t n);

#endif
