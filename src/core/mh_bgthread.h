/* mh_bgthread: memhound's background thread, a plain pthread that never runs
 * Python code or takes the GIL. Every tick (~10 ms) it reads RSS, the tracked
 * live bytes, memhound's own memory (its tables and buffers, and the SQLite
 * heap its capture flushes use: the part of RSS that is not the program's) and,
 * less often, the C heap in use (mallinfo2) into a bounded ring
 * that keeps the whole run by halving its resolution when full; it ends a unit
 * of work every `window` (time epochs; the allocation clock, kept by the hooks,
 * is on while it runs); and about once a second it flushes what changed to the
 * capture file (mh_capture).
 *
 * Start and stop are called by one thread at a time (the binding holds the
 * GIL). fork: the thread does not exist in a child; mh_bg_after_fork() starts
 * a new one there, with a capture of the child's own. No Python.h. */
#ifndef MH_BGTHREAD_H
#define MH_BGTHREAD_H

#include <stddef.h>
#include <stdint.h>

#include "mh_capture.h"

/* Points the ring holds; when full, every other point is dropped and points
 * are taken half as often. */
#define MH_BG_RING 4096

typedef struct {
    uint64_t tick_ns;    /* Timeline sampling period. */
    uint64_t window_ns;  /* 0, or end a unit of work every window (time epochs). */
    uint64_t flush_ns;   /* Capture flush period (with a capture). */
    uint64_t alloc_quantum; /* 0, or bytes of allocation per unit: the engine's
                             * allocation clock, on while the thread runs. */
} mh_bg_config_t;

/* Start the thread; it owns `capture` (may be NULL: timeline and epochs only)
 * until mh_bg_stop. Returns 0, MH_ESTATE if already running, or MH_ENOMEM. */
int mh_bg_start(const mh_bg_config_t *cfg, mh_capture_t *capture);

/* Stop the thread after a last timeline point and a last flush, and join it.
 * Returns the capture (the caller finishes and closes it), or NULL. */
mh_capture_t *mh_bg_stop(void);

/* Stop the thread without a last point or flush (around fork: from 3.12
 * CPython warns about fork when the process has more than one OS thread,
 * counted after fork returns in the parent). The ring, the capture and every
 * unflushed change stay for mh_bg_resume, or for mh_bg_stop, which resumes a
 * paused thread for its last flush. Returns 1 if paused, 0 if not running (or
 * already paused). Waits for a flush under way. */
int mh_bg_pause(void);

/* Start a thread again after mh_bg_pause, with the same ring, capture and
 * configuration. Returns 1 if resumed, 0 if there was nothing to resume, or
 * MH_ENOMEM (the reason is then mh_bg_error's). */
int mh_bg_resume(void);

/* 1 while the thread runs (paused included). */
int mh_bg_running(void);

/* Copy the ring's points, oldest first, into out[0..cap); returns how many. */
size_t mh_bg_timeline(mh_point_t *out, size_t cap);

/* The newest point into *out; returns 0 if there is none yet. */
int mh_bg_last(mh_point_t *out);

/* Highest RSS seen, bytes. */
int64_t mh_bg_peak_rss(void);

/* The last capture error ("" if none) into buf. */
void mh_bg_error(char *buf, size_t cap);

/* In a forked child: if the parent's thread was running, start one for the
 * child with a capture of its own under its pid. Returns 0 (nothing to do or
 * started) or a negative code with the reason in err. */
int mh_bg_after_fork(double started_unix, char *err, size_t err_cap);

/* In a forked child that starts a run of its own instead (mh_bg_start with a
 * new capture): drop what the parent's thread left. */
void mh_bg_forget_after_fork(void);

#endif
