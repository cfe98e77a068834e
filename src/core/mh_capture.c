/* mh_capture: the SQLite capture file. See mh_capture.h and docs/capture.md. */
#define _POSIX_C_SOURCE 200809L
#include "mh_capture.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mh_arena.h"

/* SQLite's page cache per connection, in KiB (PRAGMA cache_size=-N). A flush
 * writes each page it touches once, so a bigger cache buys nothing; SQLite's
 * default (2 MB) was most of a flush's heap. */
#define CACHE_KIB 256

/* A row as last committed, reduced to what the next flush's diff needs: its key
 * and a checksum of its contents (16 bytes instead of the row's 48). */
typedef struct {
    uint64_t key;
    uint64_t sum;
} row_sum_t;

/* A frame already in the file: (code, instr) -> frame id, for this process. */
typedef struct {
    uintptr_t code;  /* 0 marks an empty slot. */
    int32_t instr;
    int64_t id;
} frame_slot_t;

struct mh_capture {
    char *path;
    char *meta_json;
    long pid, ppid;
    double started_unix;
    mh_describe_fn describe;
    /* The rows as last committed, sorted by key: the next flush writes the
     * difference. */
    row_sum_t *sites;      /* mh_arena_alloc. */
    size_t n_sites;
    row_sum_t *cohorts;    /* mh_arena_alloc. */
    size_t n_cohorts;
    uint32_t merges;       /* Engine merges at the last flush. */
    uint32_t next_stack;   /* First stack id not yet written. */
    size_t epochs_written; /* Epoch start times written. */
    uint64_t last_seq;     /* Last timeline point written. */
    uint64_t flushes;
    frame_slot_t *frames;  /* Open addressing, power-of-two capacity (mh_arena_alloc). */
    size_t frames_cap, frames_count;
    int64_t sqlite_peak;   /* Highest SQLite heap a flush's connection held. */
    char err[256];
};

static const char SCHEMA_SQL[] =
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS process("
    " pid INTEGER PRIMARY KEY, ppid INTEGER NOT NULL, started REAL NOT NULL,"
    " meta TEXT NOT NULL, updated REAL, flushes INTEGER NOT NULL DEFAULT 0,"
    " epoch INTEGER, stride INTEGER, units INTEGER, merges INTEGER, stacks INTEGER,"
    " live_bytes REAL, live_count REAL, peak_bytes REAL, samples INTEGER,"
    " frees INTEGER, dropped INTEGER, unpinned INTEGER,"
    " rss INTEGER, peak_rss INTEGER, heap INTEGER,"
    " ended REAL, status TEXT, exit_code INTEGER, result TEXT);"
    "CREATE TABLE IF NOT EXISTS frame(id INTEGER PRIMARY KEY, file TEXT NOT NULL,"
    " function TEXT NOT NULL, line INTEGER NOT NULL, UNIQUE(file, function, line));"
    "CREATE TABLE IF NOT EXISTS stack(pid INTEGER NOT NULL, id INTEGER NOT NULL,"
    " depth INTEGER NOT NULL, truncated INTEGER NOT NULL, PRIMARY KEY(pid, id))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS stack_frame(pid INTEGER NOT NULL, stack INTEGER NOT NULL,"
    " pos INTEGER NOT NULL, frame INTEGER NOT NULL, PRIMARY KEY(pid, stack, pos))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS epoch(pid INTEGER NOT NULL, epoch INTEGER NOT NULL,"
    " start REAL NOT NULL, PRIMARY KEY(pid, epoch)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS site(pid INTEGER NOT NULL, stack INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, alloc_bytes REAL NOT NULL, alloc_count REAL NOT NULL,"
    " freed_bytes REAL NOT NULL, freed_count REAL NOT NULL,"
    " alloc_samples INTEGER NOT NULL, freed_samples INTEGER NOT NULL,"
    " PRIMARY KEY(pid, stack, epoch)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS cohort(pid INTEGER NOT NULL, stack INTEGER NOT NULL,"
    " epoch INTEGER NOT NULL, live_bytes REAL NOT NULL, live_count REAL NOT NULL,"
    " live_bytes_var REAL NOT NULL, live_count_var REAL NOT NULL,"
    " live_samples INTEGER NOT NULL, PRIMARY KEY(pid, stack, epoch)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS timeline(pid INTEGER NOT NULL, t REAL NOT NULL,"
    " rss INTEGER NOT NULL, heap INTEGER, tracked REAL NOT NULL, own INTEGER,"
    " PRIMARY KEY(pid, t)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS note(pid INTEGER NOT NULL, key TEXT NOT NULL,"
    " value TEXT NOT NULL, PRIMARY KEY(pid, key)) WITHOUT ROWID;"
    "CREATE VIEW IF NOT EXISTS live_by_line AS"
    " SELECT c.pid AS pid, f.file AS file, f.line AS line, f.function AS function,"
    " SUM(c.live_bytes) AS live_bytes, SUM(c.live_count) AS live_count"
    " FROM cohort c JOIN stack_frame sf ON sf.pid = c.pid AND sf.stack = c.stack"
    " AND sf.pos = 0 JOIN frame f ON f.id = sf.frame"
    " GROUP BY c.pid, f.file, f.line, f.function;";

static void set_err(mh_capture_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

static int db_err(mh_capture_t *c, sqlite3 *db, const char *what)
{
    set_err(c, "%s: %s", what, db ? sqlite3_errmsg(db) : "out of memory");
    return MH_ESTATE;
}

/* A connection for one flush. Opening per flush keeps no SQLite state alive
 * between flushes, so fork never copies an open database into a child. */
static sqlite3 *db_open(mh_capture_t *c, int create)
{
    sqlite3 *db = NULL;
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    if (sqlite3_open_v2(c->path, &db, flags, NULL) != SQLITE_OK) {
        db_err(c, db, "cannot open the capture");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    char pragmas[96];
    snprintf(pragmas, sizeof pragmas, "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-%d",
             CACHE_KIB);
    if (sqlite3_exec(db, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        db_err(c, db, "cannot open the capture");
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static int exec(mh_capture_t *c, sqlite3 *db, const char *sql)
{
    if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK) {
        return db_err(c, db, "capture write failed");
    }
    return 0;
}

static int prepare(mh_capture_t *c, sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        return db_err(c, db, "capture write failed");
    }
    return 0;
}

/* Run a bound statement to completion and reset it. */
static int step(mh_capture_t *c, sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        return db_err(c, db, "capture write failed");
    }
    return 0;
}

/* Refuse a file that is some other database, or a capture of a newer schema. */
static int check_schema(mh_capture_t *c, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = 0;
    int tables = 0;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        rc = db_err(c, db, "not a memhound capture");
        goto done;
    }
    tables = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (tables == 0) {
        goto done;
    }
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = 'schema'", -1, &st, NULL) !=
            SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        set_err(c, "%s is an SQLite database but not a memhound capture", c->path);
        rc = MH_EINVAL;
        goto done;
    }
    int schema = sqlite3_column_int(st, 0);
    if (schema != MH_CAPTURE_SCHEMA) {
        set_err(c, "%s has capture schema %d; this memhound writes schema %d", c->path, schema,
                MH_CAPTURE_SCHEMA);
        rc = MH_EINVAL;
    }
done:
    sqlite3_finalize(st);
    return rc;
}

/* A file an older memhound created has no timeline.own: add it (NULL in the
 * rows it wrote). */
static int add_own_column(mh_capture_t *c, sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT own FROM timeline LIMIT 0", -1, &st, NULL) == SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    sqlite3_finalize(st);
    return exec(c, db, "ALTER TABLE timeline ADD COLUMN own INTEGER");
}

mh_capture_t *mh_capture_open(const char *path, long pid, long ppid, const char *meta_json,
                              double started_unix, mh_describe_fn describe, char *err,
                              size_t err_cap)
{
    mh_capture_t *c = calloc(1, sizeof *c);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    if (c == NULL || (c->path = strdup(path)) == NULL ||
        (c->meta_json = strdup(meta_json)) == NULL) {
        snprintf(err, err_cap, "out of memory");
        mh_capture_close(c);
        return NULL;
    }
    c->pid = pid;
    c->ppid = ppid;
    c->started_unix = started_unix;
    c->describe = describe;
    c->next_stack = 1;
    db = db_open(c, 1);
    if (db == NULL || check_schema(c, db) != 0) {
        goto fail;
    }
    /* WAL: a reader (memhound report on a live capture) never blocks the
     * writer, and a kill between two flushes loses nothing committed. */
    if (exec(c, db, "PRAGMA journal_mode=WAL") != 0 || exec(c, db, "BEGIN IMMEDIATE") != 0 ||
        exec(c, db, SCHEMA_SQL) != 0 || add_own_column(c, db) != 0 ||
        exec(c, db, "INSERT OR IGNORE INTO meta VALUES ('schema', '1'),"
                    " ('created_by', 'memhound')") != 0) {
        goto fail;
    }
    static const char *const clear[] = {
        "DELETE FROM process WHERE pid = ?1", "DELETE FROM stack WHERE pid = ?1",
        "DELETE FROM stack_frame WHERE pid = ?1", "DELETE FROM epoch WHERE pid = ?1",
        "DELETE FROM site WHERE pid = ?1", "DELETE FROM cohort WHERE pid = ?1",
        "DELETE FROM timeline WHERE pid = ?1", "DELETE FROM note WHERE pid = ?1"};
    for (size_t i = 0; i < sizeof clear / sizeof clear[0]; i++) {
        if (prepare(c, db, clear[i], &st) != 0) {
            goto fail;
        }
        sqlite3_bind_int64(st, 1, pid);
        if (step(c, db, st) != 0) {
            goto fail;
        }
        sqlite3_finalize(st);
        st = NULL;
    }
    if (prepare(c, db, "INSERT INTO process(pid, ppid, started, meta) VALUES (?, ?, ?, ?)",
                &st) != 0) {
        goto fail;
    }
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, ppid);
    sqlite3_bind_double(st, 3, started_unix);
    sqlite3_bind_text(st, 4, meta_json, -1, SQLITE_STATIC);
    if (step(c, db, st) != 0 || exec(c, db, "COMMIT") != 0) {
        goto fail;
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return c;
fail:
    snprintf(err, err_cap, "%s", c->err[0] ? c->err : "cannot open the capture");
    sqlite3_finalize(st);
    if (db != NULL) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(db);
    }
    mh_capture_close(c);
    return NULL;
}

/* -- the frame dictionary ---------------------------------------------------- */

static size_t frame_slot(uintptr_t code, int32_t instr, size_t mask)
{
    uint64_t h = (uint64_t)code * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uint32_t)instr * 0xC2B2AE3D27D4EB4Full;
    return (size_t)(h >> 17) & mask;
}

static int64_t frame_cached(const mh_capture_t *c, uintptr_t code, int32_t instr)
{
    if (c->frames_cap == 0) {
        return 0;
    }
    size_t mask = c->frames_cap - 1;
    for (size_t i = frame_slot(code, instr, mask);; i = (i + 1) & mask) {
        const frame_slot_t *s = &c->frames[i];
        if (s->code == 0) {
            return 0;
        }
        if (s->code == code && s->instr == instr) {
            return s->id;
        }
    }
}

static int frame_remember(mh_capture_t *c, uintptr_t code, int32_t instr, int64_t id)
{
    if (2 * (c->frames_count + 1) > c->frames_cap) {
        size_t cap = c->frames_cap ? 2 * c->frames_cap : 1024;
        frame_slot_t *slots = mh_arena_alloc(cap * sizeof *slots); /* Zeroed. */
        if (slots == NULL) {
            return MH_ENOMEM;
        }
        for (size_t i = 0; i < c->frames_cap; i++) {
            const frame_slot_t *s = &c->frames[i];
            if (s->code != 0) {
                size_t j = frame_slot(s->code, s->instr, cap - 1);
                while (slots[j].code != 0) {
                    j = (j + 1) & (cap - 1);
                }
                slots[j] = *s;
            }
        }
        mh_arena_free(c->frames);
        c->frames = slots;
        c->frames_cap = cap;
    }
    size_t mask = c->frames_cap - 1;
    size_t i = frame_slot(code, instr, mask);
    while (c->frames[i].code != 0) {
        i = (i + 1) & mask;
    }
    c->frames[i] = (frame_slot_t){code, instr, id};
    c->frames_count++;
    return 0;
}

static void frames_forget(mh_capture_t *c)
{
    mh_arena_free(c->frames);
    c->frames = NULL;
    c->frames_cap = c->frames_count = 0;
}

typedef struct {
    sqlite3_stmt *frame_ins, *frame_get, *stack, *stack_frame, *site, *cohort, *cohort_del,
        *epoch, *point, *process;
} stmts_t;

static void stmts_free(stmts_t *s)
{
    sqlite3_stmt **all = (sqlite3_stmt **)s;
    for (size_t i = 0; i < sizeof *s / sizeof(sqlite3_stmt *); i++) {
        sqlite3_finalize(all[i]);
    }
}

/* The id of a frame in the file's frame table, inserting it if new; 0 on error. */
static int64_t frame_id(mh_capture_t *c, sqlite3 *db, stmts_t *s, const mh_frame_t *f)
{
    char file[1024], function[512];
    int line = 0;
    uintptr_t code = (f->flags & MH_FRAME_UNPINNED) ? 1 : f->code;
    int32_t instr = (f->flags & MH_FRAME_UNPINNED) ? 0 : f->instr;
    int64_t id = frame_cached(c, code, instr);
    if (id != 0) {
        return id;
    }
    if (code == 1 || c->describe == NULL ||
        c->describe(f->code, f->instr, file, sizeof file, function, sizeof function, &line) != 0) {
        strcpy(file, "<unknown>");
        strcpy(function, "<unknown>");
        line = 0;
    }
    sqlite3_bind_text(s->frame_ins, 1, file, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s->frame_ins, 2, function, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s->frame_ins, 3, line);
    if (step(c, db, s->frame_ins) != 0) {
        return 0;
    }
    sqlite3_bind_text(s->frame_get, 1, file, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(s->frame_get, 2, function, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(s->frame_get, 3, line);
    if (sqlite3_step(s->frame_get) == SQLITE_ROW) {
        id = sqlite3_column_int64(s->frame_get, 0);
    }
    sqlite3_reset(s->frame_get);
    if (id == 0) {
        db_err(c, db, "capture write failed");
        return 0;
    }
    if (frame_remember(c, code, instr, id) != 0) {
        set_err(c, "out of memory");
        return 0;
    }
    return id;
}

static int cmp_key(const void *a, const void *b)
{
    uint64_t x = ((const mh_site_t *)a)->key, y = ((const mh_site_t *)b)->key;
    return (x > y) - (x < y);
}

static void bind_row(sqlite3_stmt *st, long pid, const mh_site_t *r)
{
    sqlite3_bind_int64(st, 1, pid);
    sqlite3_bind_int64(st, 2, mh_site_stack(r));
    sqlite3_bind_int64(st, 3, mh_site_epoch(r));
    sqlite3_bind_double(st, 4, r->alloc_bytes);
    sqlite3_bind_double(st, 5, r->alloc_count);
    sqlite3_bind_double(st, 6, r->free_bytes);
    sqlite3_bind_double(st, 7, r->free_count);
    sqlite3_bind_int64(st, 8, r->alloc_samples);
}

/* A 64-bit checksum of a row's contents (a change it misses has odds of 2^-64). */
static uint64_t row_sum(const mh_site_t *r)
{
    uint64_t words[sizeof *r / sizeof(uint64_t)];
    memcpy(words, r, sizeof words);
    uint64_t h = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        h = (h ^ words[i]) * 0xFF51AFD7ED558CCDull;
        h ^= h >> 33;
    }
    return h;
}

/* The committed state of `rows` (sorted by key) into *out (mh_arena_alloc).
 * Returns 0 or MH_ENOMEM. */
static int sums_of(const mh_site_t *rows, size_t n, row_sum_t **out)
{
    row_sum_t *sums = mh_arena_alloc((n ? n : 1) * sizeof *sums);
    if (sums == NULL) {
        return MH_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        sums[i] = (row_sum_t){rows[i].key, row_sum(&rows[i])};
    }
    *out = sums;
    return 0;
}

/* Write rows of `cur` that differ from `prev` (both sorted by key); with `del`,
 * delete rows of `prev` that `cur` no longer has. */
static int write_diff(mh_capture_t *c, sqlite3 *db, sqlite3_stmt *upsert, sqlite3_stmt *del,
                      const row_sum_t *prev, size_t np, const mh_site_t *cur, size_t nc,
                      int with_free_samples)
{
    size_t i = 0, j = 0;
    while (i < np || j < nc) {
        if (j < nc && (i >= np || cur[j].key < prev[i].key)) {
            goto write; /* new row */
        }
        if (i < np && (j >= nc || prev[i].key < cur[j].key)) {
            if (del != NULL) {
                mh_site_t gone = {.key = prev[i].key};
                sqlite3_bind_int64(del, 1, c->pid);
                sqlite3_bind_int64(del, 2, mh_site_stack(&gone));
                sqlite3_bind_int64(del, 3, mh_site_epoch(&gone));
                if (step(c, db, del) != 0) {
                    return MH_ESTATE;
                }
            }
            i++;
            continue;
        }
        /* Same key in both. */
        if (prev[i].sum == row_sum(&cur[j])) {
            i++;
            j++;
            continue;
        }
        i++;
    write:
        bind_row(upsert, c->pid, &cur[j]);
        if (with_free_samples) {
            sqlite3_bind_int64(upsert, 9, cur[j].free_samples);
        }
        if (step(c, db, upsert) != 0) {
            return MH_ESTATE;
        }
        j++;
    }
    return 0;
}

static int prepare_all(mh_capture_t *c, sqlite3 *db, stmts_t *s)
{
    return prepare(c, db, "INSERT OR IGNORE INTO frame(file, function, line) VALUES (?, ?, ?)",
                   &s->frame_ins) ||
           prepare(c, db, "SELECT id FROM frame WHERE file = ? AND function = ? AND line = ?",
                   &s->frame_get) ||
           prepare(c, db, "INSERT OR REPLACE INTO stack VALUES (?, ?, ?, ?)", &s->stack) ||
           prepare(c, db, "INSERT OR REPLACE INTO stack_frame VALUES (?, ?, ?, ?)",
                   &s->stack_frame) ||
           prepare(c, db, "INSERT OR REPLACE INTO site VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   &s->site) ||
           prepare(c, db, "INSERT OR REPLACE INTO cohort VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   &s->cohort) ||
           prepare(c, db, "DELETE FROM cohort WHERE pid = ? AND stack = ? AND epoch = ?",
                   &s->cohort_del) ||
           prepare(c, db, "INSERT OR REPLACE INTO epoch VALUES (?, ?, ?)", &s->epoch) ||
           prepare(c, db,
                   "INSERT OR REPLACE INTO timeline(pid, t, rss, heap, tracked, own)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   &s->point) ||
           prepare(c, db,
                   "UPDATE process SET updated = ?2, flushes = ?3, epoch = ?4, stride = ?5,"
                   " units = ?6, merges = ?7, stacks = ?8, live_bytes = ?9, live_count = ?10,"
                   " peak_bytes = ?11, samples = ?12, frees = ?13, dropped = ?14,"
                   " unpinned = ?15, rss = ?16, peak_rss = ?17, heap = ?18 WHERE pid = ?1",
                   &s->process);
}

int mh_capture_flush(mh_capture_t *c, mh_flush_t *fl)
{
    mh_engine_copy_t *f = &fl->state;
    sqlite3 *db = NULL;
    stmts_t s;
    memset(&s, 0, sizeof s);
    int rc = MH_ESTATE;
    int merged = f->merges != c->merges;
    qsort(f->sites, f->n_sites, sizeof *f->sites, cmp_key);
    qsort(f->cohorts, f->n_cohorts, sizeof *f->cohorts, cmp_key);
    /* SQLite's heap is the process's: what this connection adds is ours. */
    sqlite3_int64 sqlite_base = sqlite3_memory_used();
    db = db_open(c, 0);
    if (db == NULL || exec(c, db, "BEGIN IMMEDIATE") != 0 || prepare_all(c, db, &s) != 0) {
        goto done;
    }
    if (merged) {
        /* Epochs were merged pairwise: every row moved, so rewrite them all. */
        static const char *const clear[] = {"DELETE FROM site WHERE pid = ?1",
                                            "DELETE FROM cohort WHERE pid = ?1",
                                            "DELETE FROM epoch WHERE pid = ?1"};
        for (size_t i = 0; i < 3; i++) {
            sqlite3_stmt *st = NULL;
            if (prepare(c, db, clear[i], &st) != 0) {
                goto done;
            }
            sqlite3_bind_int64(st, 1, c->pid);
            int r = step(c, db, st);
            sqlite3_finalize(st);
            if (r != 0) {
                goto done;
            }
        }
    }
    /* New stacks, with their frames. */
    for (uint32_t k = 0; k < f->n_stacks; k++) {
        const mh_stack_info_t *in = &f->info[k];
        uint32_t id = f->first_stack + k;
        sqlite3_bind_int64(s.stack, 1, c->pid);
        sqlite3_bind_int64(s.stack, 2, id);
        sqlite3_bind_int(s.stack, 3, in->depth);
        sqlite3_bind_int(s.stack, 4, (in->flags & MH_STACK_TRUNCATED) ? 1 : 0);
        if (step(c, db, s.stack) != 0) {
            goto done;
        }
        for (int pos = 0; pos < in->depth; pos++) {
            int64_t fid = frame_id(c, db, &s, &f->frames[in->off + (size_t)pos]);
            if (fid == 0) {
                goto done;
            }
            sqlite3_bind_int64(s.stack_frame, 1, c->pid);
            sqlite3_bind_int64(s.stack_frame, 2, id);
            sqlite3_bind_int(s.stack_frame, 3, pos);
            sqlite3_bind_int64(s.stack_frame, 4, fid);
            if (step(c, db, s.stack_frame) != 0) {
                goto done;
            }
        }
    }
    if (write_diff(c, db, s.site, NULL, merged ? NULL : c->sites, merged ? 0 : c->n_sites,
                   f->sites, f->n_sites, 1) != 0 ||
        write_diff(c, db, s.cohort, s.cohort_del, merged ? NULL : c->cohorts,
                   merged ? 0 : c->n_cohorts, f->cohorts, f->n_cohorts, 0) != 0) {
        goto done;
    }
    /* Epoch start times; the newest one written may have been the open epoch. */
    size_t from = merged ? 0 : (c->epochs_written ? c->epochs_written - 1 : 0);
    for (size_t e = from; e < f->n_epochs; e++) {
        sqlite3_bind_int64(s.epoch, 1, c->pid);
        sqlite3_bind_int64(s.epoch, 2, (sqlite3_int64)e);
        sqlite3_bind_double(s.epoch, 3, (double)f->epochs[e] / 1e9);
        if (step(c, db, s.epoch) != 0) {
            goto done;
        }
    }
    uint64_t last_seq = c->last_seq;
    for (size_t k = 0; k < fl->n_points; k++) {
        const mh_point_t *p = &fl->points[k];
        if (p->seq <= last_seq) {
            continue;
        }
        sqlite3_bind_int64(s.point, 1, c->pid);
        sqlite3_bind_double(s.point, 2, p->t);
        sqlite3_bind_int64(s.point, 3, p->rss);
        if (p->heap >= 0) {
            sqlite3_bind_int64(s.point, 4, p->heap);
        } else {
            sqlite3_bind_null(s.point, 4);
        }
        sqlite3_bind_double(s.point, 5, p->tracked);
        if (p->own >= 0) {
            sqlite3_bind_int64(s.point, 6, p->own);
        } else {
            sqlite3_bind_null(s.point, 6);
        }
        if (step(c, db, s.point) != 0) {
            goto done;
        }
        last_seq = p->seq;
    }
    sqlite3_stmt *p = s.process;
    sqlite3_bind_int64(p, 1, c->pid);
    sqlite3_bind_double(p, 2, fl->now);
    sqlite3_bind_int64(p, 3, (sqlite3_int64)(c->flushes + 1));
    sqlite3_bind_int64(p, 4, f->epoch);
    sqlite3_bind_int64(p, 5, (sqlite3_int64)f->stride);
    sqlite3_bind_int64(p, 6, (sqlite3_int64)f->units);
    sqlite3_bind_int64(p, 7, f->merges);
    sqlite3_bind_int64(p, 8, f->stacks);
    sqlite3_bind_double(p, 9, f->totals.live_bytes);
    sqlite3_bind_double(p, 10, f->totals.live_count);
    sqlite3_bind_double(p, 11, f->totals.peak_bytes);
    sqlite3_bind_int64(p, 12, (sqlite3_int64)f->totals.samples);
    sqlite3_bind_int64(p, 13, (sqlite3_int64)f->totals.frees);
    sqlite3_bind_int64(p, 14, (sqlite3_int64)f->totals.dropped);
    sqlite3_bind_int64(p, 15, (sqlite3_int64)f->totals.unpinned);
    sqlite3_bind_int64(p, 16, fl->rss);
    sqlite3_bind_int64(p, 17, fl->peak_rss);
    if (fl->heap >= 0) {
        sqlite3_bind_int64(p, 18, fl->heap);
    } else {
        sqlite3_bind_null(p, 18);
    }
    /* The state the next flush compares with, made before the commit so that
     * running out of memory leaves nothing committed. */
    row_sum_t *sites = NULL, *cohorts = NULL;
    if (sums_of(f->sites, f->n_sites, &sites) != 0 ||
        sums_of(f->cohorts, f->n_cohorts, &cohorts) != 0) {
        mh_arena_free(sites);
        set_err(c, "out of memory");
        goto done;
    }
    if (step(c, db, p) != 0 || exec(c, db, "COMMIT") != 0) {
        mh_arena_free(sites);
        mh_arena_free(cohorts);
        goto done;
    }
    /* Committed: the checksums become the state the next flush compares with. */
    mh_arena_free(c->sites);
    mh_arena_free(c->cohorts);
    c->sites = sites;
    c->n_sites = f->n_sites;
    c->cohorts = cohorts;
    c->n_cohorts = f->n_cohorts;
    c->merges = f->merges;
    c->next_stack = f->first_stack + f->n_stacks;
    c->epochs_written = f->n_epochs;
    c->last_seq = last_seq;
    c->flushes++;
    c->err[0] = '\0';
    rc = 0;
done:
    stmts_free(&s);
    if (rc != 0 && db != NULL) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        /* Frame ids handed out inside the rolled-back transaction are void. */
        frames_forget(c);
    }
    sqlite3_int64 used = sqlite3_memory_used() - sqlite_base;
    if (db != NULL && used > c->sqlite_peak) {
        c->sqlite_peak = used;
    }
    sqlite3_close(db);
    return rc;
}

uint32_t mh_capture_next_stack(const mh_capture_t *c)
{
    return c->next_stack;
}

uint64_t mh_capture_last_seq(const mh_capture_t *c)
{
    return c->last_seq;
}

int64_t mh_capture_own_bytes(const mh_capture_t *c)
{
    return c->sqlite_peak;
}

int mh_capture_finish(mh_capture_t *c, const char *status, int exit_code, double ended,
                      const char *end_json)
{
    sqlite3_stmt *st = NULL;
    int rc = MH_ESTATE;
    sqlite3 *db = db_open(c, 0);
    if (db == NULL ||
        prepare(c, db,
                "UPDATE process SET ended = ?, status = ?, exit_code = ?, result = ?"
                " WHERE pid = ?",
                &st) != 0) {
        goto done;
    }
    sqlite3_bind_double(st, 1, ended);
    sqlite3_bind_text(st, 2, status, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, exit_code);
    sqlite3_bind_text(st, 4, end_json, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, c->pid);
    rc = step(c, db, st);
done:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

const char *mh_capture_error(const mh_capture_t *c)
{
    return c->err;
}

mh_capture_t *mh_capture_reopen(const mh_capture_t *parent, long pid, long ppid,
                                double started_unix, char *err, size_t err_cap)
{
    return mh_capture_open(parent->path, pid, ppid, parent->meta_json, started_unix,
                           parent->describe, err, err_cap);
}

void mh_capture_close(mh_capture_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->path);
    free(c->meta_json);
    mh_arena_free(c->sites);
    mh_arena_free(c->cohorts);
    mh_arena_free(c->frames);
    free(c);
}
