/* mh_bgthread: timeline, time epochs and capture flushes. See mh_bgthread.h. */
#define _GNU_SOURCE
#include "mh_bgthread.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mh_guard.h"
#include "mh_arena.h"

/* Reading mallinfo2 walks malloc's free lists with the arena locked, which can
 * take milliseconds on a fragmented heap and blocks the program's mallocs
 * meanwhile: read it at most every HEAP_MIN_NS, and at most a 1/HEAP_DUTY share
 * of the time it takes. */
#define HEAP_MIN_NS 100000000ull
#define HEAP_DUTY 200u
/* Likewise, a flush holds tables_lock while it totals the live table: the
 * period stretches to FLUSH_DUTY times the time the last one held it. */
#define FLUSH_DUTY 100u

static struct {
    pthread_mutex_t lock;      /* Guards everything below but cap_lock's flush state. */
    pthread_cond_t wake;
    pthread_mutex_t cap_lock;  /* Held for a whole flush; taken by fork's prepare. */
    int inited;                /* Set once. */
    int atfork;                /* Fork handlers registered. Set once. */
    pthread_t thread;
    int running;               /* Protected by lock. */
    int stop;                  /* STOP_LAST or STOP_PAUSE. Protected by lock. */
    int paused;                /* Joined by mh_bg_pause, resumable. Protected by lock. */
    int restart_in_child;      /* Set by the fork child handler. */
    mh_bg_config_t cfg;        /* Set before the thread starts. */
    mh_capture_t *capture;     /* Owned by the thread while it runs. */
    mh_point_t ring[MH_BG_RING]; /* Protected by lock. */
    size_t n;                  /* Points in the ring. Protected by lock. */
    uint64_t every;            /* Ticks per point. Protected by lock. */
    uint64_t seq;              /* Points taken so far. Protected by lock. */
    int64_t peak_rss;          /* Protected by lock. */
    char err[256];             /* Last capture error. Protected by lock. */
    int statm;                 /* /proc/self/statm, or -1. Thread's own. */
} bg = {.statm = -1};

/* Values of bg.stop: end with a last point and flush, or just end (pause). */
#define STOP_LAST 1
#define STOP_PAUSE 2

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void init_sync(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&bg.lock, NULL);
    pthread_mutex_init(&bg.cap_lock, NULL);
    pthread_cond_init(&bg.wake, &ca);
    pthread_condattr_destroy(&ca);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&bg.cap_lock); /* No flush (no SQLite call) is under way. */
    pthread_mutex_lock(&bg.lock);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&bg.lock);
    pthread_mutex_unlock(&bg.cap_lock);
}

static void fork_child(void)
{
    init_sync();
    bg.restart_in_child = bg.running;
    bg.running = 0;
    bg.stop = 0;
    bg.paused = 0;
    bg.n = 0;
    bg.every = 1;
    bg.peak_rss = 0;
    bg.err[0] = '\0';
    bg.statm = -1; /* The parent's descriptor reads the parent's /proc entry. */
}

static int64_t read_rss(void)
{
    static long page;
    char buf[128];
    if (page == 0) {
        page = sysconf(_SC_PAGESIZE);
    }
    if (bg.statm < 0) {
        bg.statm = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
        if (bg.statm < 0) {
            return 0;
        }
    }
    ssize_t n = pread(bg.statm, buf, sizeof buf - 1, 0);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    char *p = strchr(buf, ' ');
    return p ? (int64_t)strtoll(p + 1, NULL, 10) * page : 0;
}

static int64_t read_heap(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    struct mallinfo2 mi = mallinfo2();
    return (int64_t)(mi.uordblks + mi.hblkhd);
#else
    return -1;
#endif
}

/* memhound's own memory now: its tables and buffers (mh_arena), the ring, and
 * what the capture accounts for. Called by the thread only (it owns the
 * capture). */
static int64_t own_bytes(void)
{
    int64_t own = (int64_t)mh_arena_bytes() + (int64_t)sizeof bg.ring;
    if (bg.capture != NULL) {
        own += mh_capture_own_bytes(bg.capture);
    }
    return own;
}

/* Take one timeline point; the heap figure is re-read only when due. */
static void sample(uint64_t now, uint64_t *heap_due, int64_t *heap, int force)
{
    int64_t rss = read_rss();
    int64_t own = own_bytes();
    if (now >= *heap_due) {
        uint64_t t0 = now_ns();
        *heap = read_heap();
        uint64_t cost = now_ns() - t0;
        uint64_t wait = cost * HEAP_DUTY;
        *heap_due = now + (wait > HEAP_MIN_NS ? wait : HEAP_MIN_NS);
    }
    mh_engine_lock();
    double tracked = mh_engine.totals.live_bytes;
    uint64_t start = mh_engine.start_ns;
    mh_engine_unlock();
    pthread_mutex_lock(&bg.lock);
    if (rss > bg.peak_rss) {
        bg.peak_rss = rss;
    }
    static uint64_t ticks;
    if (force || ticks++ % bg.every == 0) {
        if (bg.n == MH_BG_RING) {
            /* Full: keep every other point, take points half as often. */
            for (size_t i = 0; i < MH_BG_RING / 2; i++) {
                bg.ring[i] = bg.ring[2 * i + 1];
            }
            bg.n = MH_BG_RING / 2;
            bg.every *= 2;
        }
        bg.ring[bg.n++] =
            (mh_point_t){++bg.seq, (double)(now - start) / 1e9, rss, *heap, tracked, own};
    }
    pthread_mutex_unlock(&bg.lock);
}

/* A flush's buffers come from mh_arena, not malloc: they are large, made
 * and freed every flush, and must not stay resident in the C heap between
 * flushes (the program's RSS would grow with them). */
static void flush_free(mh_flush_t *f)
{
    mh_engine_copy_free(&f->state, mh_arena_free);
    mh_arena_free((void *)f->points);
}

/* Copy the engine's state under tables_lock. Returns 0 or MH_ENOMEM. */
static int copy_state(mh_flush_t *f, uint32_t first_stack)
{
    mh_engine_lock();
    int rc = mh_engine_copy_locked(&f->state, first_stack, mh_arena_alloc);
    mh_engine_unlock();
    f->now = (double)f->state.elapsed_ns / 1e9;
    return rc;
}

/* One flush; returns the nanoseconds tables_lock was held. */
static uint64_t flush(mh_capture_t *c)
{
    mh_flush_t f;
    memset(&f, 0, sizeof f);
    pthread_mutex_lock(&bg.cap_lock);
    uint64_t t0 = now_ns();
    int rc = copy_state(&f, mh_capture_next_stack(c));
    uint64_t held = now_ns() - t0;
    if (rc == 0) {
        uint64_t last = mh_capture_last_seq(c);
        mh_point_t *pts = mh_arena_alloc(MH_BG_RING * sizeof *pts);
        pthread_mutex_lock(&bg.lock);
        if (pts != NULL) {
            for (size_t i = 0; i < bg.n; i++) {
                if (bg.ring[i].seq > last) {
                    pts[f.n_points++] = bg.ring[i];
                }
            }
        }
        f.points = pts;
        f.peak_rss = bg.peak_rss;
        if (bg.n > 0) {
            f.rss = bg.ring[bg.n - 1].rss;
            f.heap = bg.ring[bg.n - 1].heap;
        }
        pthread_mutex_unlock(&bg.lock);
        rc = mh_capture_flush(c, &f);
    }
    pthread_mutex_lock(&bg.lock);
    if (rc == MH_ENOMEM) {
        snprintf(bg.err, sizeof bg.err, "capture flush failed: out of memory");
    } else if (rc != 0) {
        snprintf(bg.err, sizeof bg.err, "%s", mh_capture_error(c));
    }
    pthread_mutex_unlock(&bg.lock);
    flush_free(&f);
    pthread_mutex_unlock(&bg.cap_lock);
    return held;
}

/* The thread; `arg` is non-NULL for a thread resumed after a pause, whose
 * first flush waits a whole period (a fork storm must not flush per fork). */
static void *run(void *arg)
{
    mh_tls.ignored = 1; /* Nothing this thread allocates is the program's. */
    uint64_t now = now_ns();
    uint64_t next_tick = now, next_window = now + bg.cfg.window_ns;
    uint64_t next_flush = arg != NULL ? now + bg.cfg.flush_ns : now;
    uint64_t heap_due = 0;
    int64_t heap = -1;
    /* The first flushes come sooner (1/16 of the period, doubling up to it), so
     * a short run killed by a signal still leaves most of itself behind. */
    uint64_t flush_gap = bg.cfg.flush_ns / 16 ? bg.cfg.flush_ns / 16 : bg.cfg.flush_ns;
    for (;;) {
        pthread_mutex_lock(&bg.lock);
        while (!bg.stop && (now = now_ns()) < next_tick) {
            struct timespec ts = {(time_t)(next_tick / 1000000000ull),
                                  (long)(next_tick % 1000000000ull)};
            pthread_cond_timedwait(&bg.wake, &bg.lock, &ts);
        }
        int stop = bg.stop;
        pthread_mutex_unlock(&bg.lock);
        if (stop == STOP_PAUSE) {
            return NULL; /* Everything stays for mh_bg_resume's thread. */
        }
        if (stop) {
            break;
        }
        sample(now, &heap_due, &heap, 0);
        if (bg.cfg.window_ns && now >= next_window) {
            mh_engine_lock();
            if (mh_engine.gen != 0) {
                mh_engine_end_unit_locked();
            }
            mh_engine_unlock();
            next_window += bg.cfg.window_ns;
            if (next_window < now) {
                next_window = now + bg.cfg.window_ns;
            }
        }
        if (bg.capture != NULL && now >= next_flush) {
            uint64_t held = flush(bg.capture);
            uint64_t wait = held * FLUSH_DUTY;
            next_flush = now + (wait > flush_gap ? wait : flush_gap);
            flush_gap = flush_gap * 2 < bg.cfg.flush_ns ? flush_gap * 2 : bg.cfg.flush_ns;
        }
        next_tick += bg.cfg.tick_ns;
        if (next_tick < now) {
            next_tick = now + bg.cfg.tick_ns;
        }
    }
    heap_due = 0;
    sample(now_ns(), &heap_due, &heap, 1);
    if (bg.capture != NULL) {
        flush(bg.capture);
    }
    if (bg.statm >= 0) {
        close(bg.statm);
        bg.statm = -1;
    }
    return NULL;
}

/* Create the thread (bg.lock held), new or `resumed` after a pause (the ring
 * and the capture carry on; run() starts its clocks afresh). Returns 0 or
 * pthread_create's error. */
static int spawn_locked(int resumed)
{
    static char resumed_mark;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    int rc = pthread_create(&bg.thread, &attr, run, resumed ? &resumed_mark : NULL);
    pthread_attr_destroy(&attr);
    if (rc == 0) {
        bg.paused = 0;
    }
    return rc;
}

int mh_bg_start(const mh_bg_config_t *cfg, mh_capture_t *capture)
{
    if (!bg.inited) {
        init_sync();
        bg.inited = 1;
    }
    if (!bg.atfork) {
        /* Registered after the engine's handlers, so that fork's prepare takes
         * cap_lock before tables_lock, the order a flush takes them in. */
        pthread_atfork(fork_prepare, fork_parent, fork_child);
        bg.atfork = 1;
    }
    pthread_mutex_lock(&bg.lock);
    if (bg.running) {
        pthread_mutex_unlock(&bg.lock);
        return MH_ESTATE;
    }
    bg.cfg = *cfg;
    if (bg.cfg.tick_ns == 0) {
        bg.cfg.tick_ns = 10000000ull;
    }
    if (bg.cfg.flush_ns == 0) {
        bg.cfg.flush_ns = 1000000000ull;
    }
    bg.capture = capture;
    bg.stop = 0;
    bg.n = 0;
    bg.every = 1;
    bg.seq = 0;
    bg.peak_rss = 0;
    bg.err[0] = '\0';
    bg.paused = 0;
    int rc = spawn_locked(0);
    if (rc != 0) {
        bg.capture = NULL;
        pthread_mutex_unlock(&bg.lock);
        return MH_ENOMEM;
    }
    bg.running = 1;
    pthread_mutex_unlock(&bg.lock);
    mh_engine_lock();
    mh_engine_set_alloc_clock_locked(cfg->alloc_quantum);
    mh_engine_unlock();
    return 0;
}

mh_capture_t *mh_bg_stop(void)
{
    if (!bg.inited) {
        return NULL;
    }
    pthread_mutex_lock(&bg.lock);
    if (!bg.running || bg.stop) { /* Not running, or another caller is stopping it. */
        pthread_mutex_unlock(&bg.lock);
        return NULL;
    }
    if (bg.paused && spawn_locked(1) != 0) {
        /* No thread to do the last flush: the capture keeps its last one. */
        bg.paused = 0;
        bg.running = 0;
        mh_capture_t *c = bg.capture;
        bg.capture = NULL;
        pthread_mutex_unlock(&bg.lock);
        return c;
    }
    bg.stop = STOP_LAST;
    pthread_cond_signal(&bg.wake);
    pthread_mutex_unlock(&bg.lock);
    pthread_join(bg.thread, NULL);
    mh_engine_lock();
    mh_engine_set_alloc_clock_locked(0); /* Epochs end with the thread's last flush. */
    mh_engine_unlock();
    pthread_mutex_lock(&bg.lock);
    bg.running = 0;
    mh_capture_t *c = bg.capture;
    bg.capture = NULL;
    pthread_mutex_unlock(&bg.lock);
    return c;
}

int mh_bg_pause(void)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    if (!bg.running || bg.stop || bg.paused) {
        pthread_mutex_unlock(&bg.lock);
        return 0;
    }
    bg.stop = STOP_PAUSE;
    pthread_cond_signal(&bg.wake);
    pthread_mutex_unlock(&bg.lock);
    pthread_join(bg.thread, NULL);
    pthread_mutex_lock(&bg.lock);
    bg.stop = 0;
    bg.paused = 1;
    pthread_mutex_unlock(&bg.lock);
    return 1;
}

int mh_bg_resume(void)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    int rc = 0;
    if (bg.paused && bg.running && !bg.stop) {
        rc = spawn_locked(1) == 0 ? 1 : MH_ENOMEM;
        if (rc < 0) {
            snprintf(bg.err, sizeof bg.err, "cannot restart memhound's thread after fork");
        }
    }
    pthread_mutex_unlock(&bg.lock);
    return rc;
}

int mh_bg_running(void)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    int r = bg.running;
    pthread_mutex_unlock(&bg.lock);
    return r;
}

size_t mh_bg_timeline(mh_point_t *out, size_t cap)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    size_t n = bg.n < cap ? bg.n : cap;
    memcpy(out, bg.ring, n * sizeof *out);
    pthread_mutex_unlock(&bg.lock);
    return n;
}

int mh_bg_last(mh_point_t *out)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    int r = bg.n > 0;
    if (r) {
        *out = bg.ring[bg.n - 1];
    }
    pthread_mutex_unlock(&bg.lock);
    return r;
}

int64_t mh_bg_peak_rss(void)
{
    if (!bg.inited) {
        return 0;
    }
    pthread_mutex_lock(&bg.lock);
    int64_t r = bg.peak_rss;
    pthread_mutex_unlock(&bg.lock);
    return r;
}

void mh_bg_error(char *buf, size_t cap)
{
    if (!bg.inited) {
        buf[0] = '\0';
        return;
    }
    pthread_mutex_lock(&bg.lock);
    snprintf(buf, cap, "%s", bg.err);
    pthread_mutex_unlock(&bg.lock);
}

void mh_bg_forget_after_fork(void)
{
    if (!bg.inited || !bg.restart_in_child) {
        return;
    }
    bg.restart_in_child = 0;
    mh_capture_close(bg.capture); /* Memory only: no connection is ever kept open. */
    bg.capture = NULL;
}

int mh_bg_after_fork(double started_unix, char *err, size_t err_cap)
{
    err[0] = '\0';
    if (!bg.inited || !bg.restart_in_child) {
        return 0;
    }
    bg.restart_in_child = 0;
    mh_capture_t *parent = bg.capture, *mine = NULL;
    bg.capture = NULL;
    if (parent != NULL) {
        mine = mh_capture_reopen(parent, (long)getpid(), (long)getppid(), started_unix, err,
                                 err_cap);
        mh_capture_close(parent); /* Memory only: no connection is ever kept open. */
        if (mine == NULL) {
            return MH_ESTATE;
        }
    }
    mh_bg_config_t cfg = bg.cfg;
    int rc = mh_bg_start(&cfg, mine);
    if (rc != 0) {
        mh_capture_close(mine);
        snprintf(err, err_cap, "cannot start memhound's thread in the child");
    }
    return rc;
}
