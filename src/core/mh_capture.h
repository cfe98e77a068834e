/* mh_capture: the capture file, an SQLite database (the system libsqlite3, WAL
 * mode) that the background thread writes about once a second. Each flush is one
 * transaction holding what changed since the last one (site and cohort rows,
 * new stacks and frames, epochs, timeline points, the process's totals), so a
 * process killed at any moment leaves a consistent file with everything up to
 * its last flush. Several processes (fork) write one file, each under its own
 * pid. The schema is versioned; docs/capture.md documents it for users.
 *
 * Used only by the background thread and by the thread that starts or stops it
 * (never both at once: mh_bgthread serialises them). Allocates with libc malloc,
 * never through Python's allocators. No Python.h. */
#ifndef MH_CAPTURE_H
#define MH_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "mh_engine.h"

/* Version of the capture schema; readers refuse a newer one. */
#define MH_CAPTURE_SCHEMA 1

/* Describe a frame (a pinned code object and instruction index) without the
 * GIL: file, function and line, written as NUL-terminated UTF-8 into the
 * buffers (truncated to fit). Returns 0, or -1 if the frame cannot be read. */
typedef int (*mh_describe_fn)(uintptr_t code, int32_t instr, char *file, size_t file_cap,
                              char *function, size_t function_cap, int *line);

/* One point of the timeline. */
typedef struct {
    uint64_t seq;     /* Position in the run's sequence of points (1, 2, ...). */
    double t;         /* Seconds since tracking started. */
    int64_t rss;      /* Resident set size, bytes. */
    int64_t heap;     /* C heap in use (mallinfo2), bytes; -1 if unknown. */
    double tracked;   /* Estimated tracked live bytes. */
    int64_t own;      /* memhound's own memory (mh_bg_own_bytes), bytes; -1 if unknown. */
} mh_point_t;

/* What one flush writes: the engine's state, copied under tables_lock by
 * mh_bgthread with the stacks the capture does not have yet (from
 * mh_capture_next_stack), plus the timeline points not yet written. */
typedef struct {
    mh_engine_copy_t state;   /* Allocated with mh_arena_alloc; the capture sorts its
                               * rows (and keeps a checksum of each). */
    double now;               /* Seconds since start. */
    int64_t rss, peak_rss, heap;
    const mh_point_t *points; /* Timeline points to add, oldest first. */
    size_t n_points;
} mh_flush_t;

typedef struct mh_capture mh_capture_t;

/* Open (creating if needed) the capture at `path` for process `pid` (child of
 * `ppid`, 0 for the first process), whose static facts are the JSON object
 * `meta_json`. Rows an earlier run left under the same pid are replaced.
 * Returns a capture, or NULL with a message in err[0..err_cap). */
mh_capture_t *mh_capture_open(const char *path, long pid, long ppid, const char *meta_json,
                              double started_unix, mh_describe_fn describe, char *err,
                              size_t err_cap);

/* Write what changed since the last flush. Returns 0, or a negative code with
 * mh_capture_error() set; the capture stays usable (the next flush retries). */
int mh_capture_flush(mh_capture_t *c, mh_flush_t *f);

/* Record the end of the process's run: status ("completed", "exited", "raised",
 * "interrupted", "stopped"), exit code, seconds since start, and a JSON object of
 * results known only at the end. Returns 0 or a negative code. */
int mh_capture_finish(mh_capture_t *c, const char *status, int exit_code, double ended,
                      const char *end_json);

/* The last error, or "" if none. */
const char *mh_capture_error(const mh_capture_t *c);

/* The first stack id the next flush must bring (ids below it are written). */
uint32_t mh_capture_next_stack(const mh_capture_t *c);

/* The last timeline point written (its seq), 0 if none. */
uint64_t mh_capture_last_seq(const mh_capture_t *c);

/* Bytes the capture accounts for that mh_arena_bytes does not count: the
 * highest SQLite heap a flush's connection has used (the connection is closed
 * after each flush, but the C heap may keep those pages resident for the next
 * one). Its other memory (the last flush's row checksums, the frame
 * dictionary) is in mh_arena_bytes. */
int64_t mh_capture_own_bytes(const mh_capture_t *c);

/* Open the same file for a forked child `pid` of `ppid`, with the same
 * meta and describer: a capture of its own that writes under its pid.
 * Returns NULL with a message in err on failure. */
mh_capture_t *mh_capture_reopen(const mh_capture_t *parent, long pid, long ppid,
                                double started_unix, char *err, size_t err_cap);

/* Release the capture's memory (the file stays; no connection is held between
 * flushes, so this is also how a child forgets its parent's capture). NULL is
 * ignored. */
void mh_capture_close(mh_capture_t *c);

#endif
