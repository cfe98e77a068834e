/* memhound._core: the thin binding between the C engine and the Python API.
 * It returns ints, floats, tuples and lists; classes, grouping and reports live
 * in Python. The only file of the core that raises Python exceptions. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <string.h>
#include <unistd.h>

#include "mh_bgthread.h"
#include "mh_capture.h"
#include "mh_engine.h"
#include "mh_epochfn.h"
#include "mh_freelists.h"
#include "mh_heap.h"
#include "mh_pyframes.h"
#include "mh_pymem.h"

static int orphaned; /* stop() found the hooks wrapped by another tool. GIL. */

/* 1 while tracking; else 0 with RuntimeError set. */
static int require_tracking(void)
{
    if (atomic_load(&mh_sample_gen) == 0) {
        PyErr_SetString(PyExc_RuntimeError, "memhound is not tracking; call start() first");
        return 0;
    }
    return 1;
}

typedef struct {
    uintptr_t *codes;
    size_t n, cap;
} code_queue_t;

static void queue_code(uintptr_t code, void *arg)
{
    code_queue_t *q = arg;
    if (q->n < q->cap) {
        q->codes[q->n++] = code;
    }
    /* else: the reference stays (the queue could not be allocated). */
}

/* Hand back every pinned code object and clear the tables. GIL held. */
static void end_run(void)
{
    code_queue_t q = {0};
    mh_engine_lock();
    q.cap = mh_engine.pins.count;
    q.codes = q.cap ? PyMem_RawMalloc(q.cap * sizeof *q.codes) : NULL;
    if (q.codes == NULL) {
        q.cap = 0;
    }
    mh_engine_end_locked(queue_code, &q);
    mh_engine_unlock();
    for (size_t i = 0; i < q.n; i++) {
        mh_pyframes_unref(q.codes[i]);
    }
    PyMem_RawFree(q.codes);
}

/* -- the background thread and the capture ----------------------------------- */

/* Stop the background thread (a last flush), record the end in the capture.
 * Returns the capture's error message (empty if none) in a static buffer. */
static const char *stop_background(const char *status, int exit_code, const char *end_json)
{
    static char err[256];
    mh_capture_t *c;
    err[0] = '\0';
    Py_BEGIN_ALLOW_THREADS
    c = mh_bg_stop();
    if (c != NULL) {
        mh_bg_error(err, sizeof err);
        double ended = (double)(mh_engine_clock_ns() - mh_engine.start_ns) / 1e9;
        if (mh_capture_finish(c, status, exit_code, ended, end_json) != 0 && !err[0]) {
            snprintf(err, sizeof err, "%s", mh_capture_error(c));
        }
        mh_capture_close(c);
    }
    Py_END_ALLOW_THREADS
    return err;
}

/* bg_start(tick, window, flush, path, meta_json, started_unix): start the
 * background thread: a timeline point every `tick` seconds, a unit of work ended
 * every `window` seconds (0: none), and with `path`, a capture flushed every
 * `flush` seconds. */
static PyObject *core_bg_start(PyObject *self, PyObject *args)
{
    double tick, window, flush, started;
    const char *path = NULL, *meta = NULL;
    if (!PyArg_ParseTuple(args, "dddzsd", &tick, &window, &flush, &path, &meta, &started)) {
        return NULL;
    }
    if (!require_tracking()) {
        return NULL;
    }
    if (!(tick > 0 && tick < 60) || !(window >= 0 && window < 3600) || !(flush > 0 && flush < 3600)) {
        PyErr_SetString(PyExc_ValueError, "bad background thread periods");
        return NULL;
    }
    mh_capture_t *c = NULL;
    if (path != NULL) {
        char err[512];
        Py_BEGIN_ALLOW_THREADS
        c = mh_capture_open(path, (long)getpid(), (long)getppid(), meta, started, mh_pyframes_describe, err,
                            sizeof err);
        Py_END_ALLOW_THREADS
        if (c == NULL) {
            PyErr_SetString(PyExc_OSError, err);
            return NULL;
        }
    }
    mh_bg_config_t cfg = {(uint64_t)(tick * 1e9), (uint64_t)(window * 1e9),
                          (uint64_t)(flush * 1e9)};
    int rc = mh_bg_start(&cfg, c);
    if (rc != 0) {
        mh_capture_close(c);
        PyErr_SetString(PyExc_RuntimeError, rc == MH_ESTATE
                                                ? "memhound's background thread is already running"
                                                : "cannot start memhound's background thread");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* bg_stop(status, exit_code, end_json): stop the background thread after a
 * last flush and record how the run ended. Returns the capture's last error, or
 * None. */
static PyObject *core_bg_stop(PyObject *self, PyObject *args)
{
    const char *status, *end_json;
    int code;
    if (!PyArg_ParseTuple(args, "sis", &status, &code, &end_json)) {
        return NULL;
    }
    const char *err = stop_background(status, code, end_json);
    if (err[0]) {
        return PyUnicode_DecodeUTF8(err, (Py_ssize_t)strlen(err), "replace");
    }
    Py_RETURN_NONE;
}

static PyObject *core_bg_after_fork(PyObject *self, PyObject *arg)
{
    double started = PyFloat_AsDouble(arg);
    char err[512];
    if (started == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (mh_bg_after_fork(started, err, sizeof err) != 0) {
        return PyUnicode_DecodeUTF8(err, (Py_ssize_t)strlen(err), "replace");
    }
    Py_RETURN_NONE;
}

/* -- fork from 3.12: the background thread is stopped before and started
 * again once CPython has counted the parent's threads ----------------------- */

static PyObject *fork_caller; /* The frame that called os.fork(), or NULL. GIL. */

/* 1 if the main thread is still inside the os.fork() called by fork_caller
 * (running the after-fork hooks, which have their own eval-loop checks):
 * fork_caller is on the stack but not on top. */
static int inside_fork(void)
{
    PyFrameObject *top = PyEval_GetFrame(); /* Borrowed. */
    if (top == NULL || top == (PyFrameObject *)fork_caller) {
        return 0;
    }
    PyFrameObject *f = PyFrame_GetBack(top);
    while (f != NULL) {
        if (f == (PyFrameObject *)fork_caller) {
            Py_DECREF(f);
            return 1;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    return 0;
}

/* Pending call (main thread): start the paused thread once os.fork() has
 * returned to its caller, that is after CPython's count of the threads. */
static int resume_pending(void *unused)
{
    if (fork_caller != NULL && inside_fork() && Py_AddPendingCall(resume_pending, NULL) == 0) {
        return 0; /* Look again at the next check. */
    }
    Py_CLEAR(fork_caller);
    mh_bg_resume();
    return 0;
}

/* bg_pause() -> bool: stop the background thread, without a last flush, until
 * bg_resume_later(). */
static PyObject *core_bg_pause(PyObject *self, PyObject *unused)
{
    int r;
    Py_BEGIN_ALLOW_THREADS
    r = mh_bg_pause();
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(r);
}

/* bg_resume_later(caller): from the main thread's after-fork hook, start the
 * paused thread again once os.fork() has returned to `caller` (the frame that
 * called it), at the main thread's next check of the eval loop. */
static PyObject *core_bg_resume_later(PyObject *self, PyObject *caller)
{
    if (caller != Py_None && !PyFrame_Check(caller)) {
        PyErr_SetString(PyExc_TypeError, "bg_resume_later() takes a frame or None");
        return NULL;
    }
    Py_XSETREF(fork_caller, caller == Py_None ? NULL : Py_NewRef(caller));
    if (Py_AddPendingCall(resume_pending, NULL) != 0) {
        Py_CLEAR(fork_caller);
        mh_bg_resume(); /* The queue is full: better a warning than no thread. */
    }
    Py_RETURN_NONE;
}

static PyObject *core_bg_forget_after_fork(PyObject *self, PyObject *unused)
{
    mh_bg_forget_after_fork();
    Py_RETURN_NONE;
}

static PyObject *int_or_none(int64_t v)
{
    if (v < 0) {
        Py_RETURN_NONE;
    }
    return PyLong_FromLongLong((long long)v);
}

static PyObject *point_tuple(const mh_point_t *p)
{
    return Py_BuildValue("(dLdNN)", p->t, (long long)p->rss, p->tracked, int_or_none(p->heap),
                         int_or_none(p->own));
}

/* timeline(): the background thread's points, oldest first, as tuples
 * (seconds, rss, tracked, heap or None, memhound's own bytes or None). */
static PyObject *core_timeline(PyObject *self, PyObject *unused)
{
    mh_point_t *pts = PyMem_RawMalloc(MH_BG_RING * sizeof *pts);
    if (pts == NULL) {
        return PyErr_NoMemory();
    }
    size_t n = mh_bg_timeline(pts, MH_BG_RING);
    PyObject *out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out != NULL && i < n; i++) {
        PyObject *t = point_tuple(&pts[i]);
        if (t == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, (Py_ssize_t)i, t);
    }
    PyMem_RawFree(pts);
    return out;
}

static PyObject *core_timeline_last(PyObject *self, PyObject *unused)
{
    mh_point_t p;
    if (!mh_bg_last(&p)) {
        Py_RETURN_NONE;
    }
    return point_tuple(&p);
}

static PyObject *core_bg_status(PyObject *self, PyObject *unused)
{
    char err[256];
    mh_bg_error(err, sizeof err);
    return Py_BuildValue("{s:O,s:L,s:s}", "running", mh_bg_running() ? Py_True : Py_False,
                         "peak_rss", (long long)mh_bg_peak_rss(), "error", err);
}

static PyObject *core_start(PyObject *self, PyObject *args)
{
    long long sample_bytes;
    int max_frames;
    unsigned long long seed;
    if (!PyArg_ParseTuple(args, "LiK", &sample_bytes, &max_frames, &seed)) {
        return NULL;
    }
    if (sample_bytes < 1) {
        PyErr_SetString(PyExc_ValueError, "sample_bytes must be a positive integer");
        return NULL;
    }
    if (max_frames < 1 || max_frames > MH_MAX_FRAMES_CAP) {
        PyErr_Format(PyExc_ValueError, "max_frames must be between 1 and %d",
                     MH_MAX_FRAMES_CAP);
        return NULL;
    }
    if (orphaned) {
        PyErr_SetString(PyExc_RuntimeError,
                        "memhound cannot start again: its earlier hooks are still wrapped "
                        "by another allocator installed after them");
        return NULL;
    }
    if (mh_pymem_installed()) {
        PyErr_SetString(PyExc_RuntimeError, "memhound is already tracking; call stop() first");
        return NULL;
    }
    if (mh_engine_init() != 0) {
        PyErr_NoMemory();
        return NULL;
    }
    mh_engine_pin = mh_pyframes_pin;
    mh_engine_lock();
    mh_engine_begin_locked(sample_bytes, max_frames, seed);
    mh_engine_unlock();
    mh_pymem_install();
    Py_RETURN_NONE;
}

static PyObject *core_stop(PyObject *self, PyObject *unused)
{
    if (!mh_pymem_installed() || orphaned) {
        PyErr_SetString(PyExc_RuntimeError, "memhound is not tracking");
        return NULL;
    }
    stop_background("stopped", 0, "{}");
    int r = mh_pymem_uninstall();
    end_run();
    if (r == MH_EBUSY) {
        orphaned = 1;
        Py_RETURN_FALSE;
    }
    /* MH_EGONE: another tool took the hooks out already; nothing is left to undo. */
    Py_RETURN_TRUE;
}

static PyObject *core_is_tracking(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(atomic_load(&mh_sample_gen) != 0);
}

static PyObject *core_merge_epochs(PyObject *self, PyObject *unused)
{
    if (!require_tracking()) {
        return NULL;
    }
    mh_engine_lock();
    mh_engine_merge_epochs_locked();
    uint32_t e = mh_engine.epoch;
    mh_engine_unlock();
    return PyLong_FromUnsignedLong(e);
}

/* Also next_epoch(): with max_epochs set (memhound run) the program's own
 * epochs are units, grouped and merged like any other; otherwise the stride is
 * 1 and every unit is a new epoch. */
static PyObject *core_end_unit(PyObject *self, PyObject *unused)
{
    if (!require_tracking()) {
        return NULL;
    }
    mh_engine_lock();
    uint32_t e = mh_engine_end_unit_locked();
    mh_engine_unlock();
    return PyLong_FromUnsignedLong(e);
}

static PyObject *core_set_max_epochs(PyObject *self, PyObject *arg)
{
    unsigned long v = PyLong_AsUnsignedLong(arg);
    if (v == (unsigned long)-1 && PyErr_Occurred()) {
        return NULL;
    }
    if (v != 0 && (v < 4 || v > 1u << 20)) {
        PyErr_SetString(PyExc_ValueError, "max_epochs must be 0 or between 4 and 2**20");
        return NULL;
    }
    mh_engine_lock();
    mh_engine.max_epochs = (uint32_t)v;
    mh_engine_unlock();
    Py_RETURN_NONE;
}

static PyObject *totals_dict(const mh_totals_t *t, uint32_t epoch, int64_t sample_bytes,
                             int max_frames, size_t live_entries, uint32_t stacks,
                             uint32_t merges)
{
    PyObject *d = Py_BuildValue("{s:d,s:d,s:d,s:K,s:K,s:K,s:K,s:I,s:L,s:i,s:n,s:I,s:I}",
                         "live_bytes", t->live_bytes, "live_count", t->live_count,
                         "peak_bytes", t->peak_bytes, "samples",
                         (unsigned long long)t->samples, "frees",
                         (unsigned long long)t->frees, "dropped",
                         (unsigned long long)t->dropped, "unpinned",
                         (unsigned long long)t->unpinned, "epoch", (unsigned)epoch,
                         "sample_bytes", (long long)sample_bytes, "max_frames", max_frames,
                         "live_entries", (Py_ssize_t)live_entries, "stacks", (unsigned)stacks,
                         "merges", (unsigned)merges);
    if (d != NULL) {
        PyObject *st = PyLong_FromUnsignedLongLong(mh_engine.stride);
        if (st == NULL || PyDict_SetItemString(d, "stride", st) < 0) {
            Py_CLEAR(d);
        }
        Py_XDECREF(st);
    }
    return d;
}

static PyObject *core_totals(PyObject *self, PyObject *unused)
{
    if (!require_tracking()) {
        return NULL;
    }
    mh_engine_lock();
    mh_totals_t t = mh_engine.totals;
    uint32_t epoch = mh_engine.epoch;
    size_t n = mh_engine.live.count;
    uint32_t stacks = mh_engine.stacks.count;
    uint32_t merges = mh_engine.merges;
    mh_engine_unlock();
    return totals_dict(&t, epoch, mh_sample_bytes, mh_engine.max_frames, n, stacks, merges);
}

/* PyMem_Raw as the engine copy's allocator: snapshot() holds tables_lock with
 * the thread busy, so these pass through the hooks. */
static void *raw_alloc(size_t n)
{
    return PyMem_RawMalloc(n);
}

static void raw_release(void *p)
{
    PyMem_RawFree(p);
}

/* Copy every stack (ids from 1) under the lock, and keep the code objects
 * alive while they are resolved after the lock is dropped, whatever another
 * thread does meanwhile. Lock held. */
static int copy_locked(mh_engine_copy_t *c)
{
    if (mh_engine_copy_locked(c, 1, raw_alloc) != 0) {
        return -1;
    }
    for (size_t i = 0; i < c->n_frames; i++) {
        if (!(c->frames[i].flags & MH_FRAME_UNPINNED)) {
            mh_pyframes_ref(c->frames[i].code);
        }
    }
    return 0;
}

/* Site rows as packed bytes, one mh_site_t (48 bytes: key, four doubles, two
 * uint32) per row; the Python side unpacks them lazily. */
static PyObject *site_rows(const mh_site_t *rows, size_t n)
{
    return PyBytes_FromStringAndSize((const char *)rows, (Py_ssize_t)(n * sizeof *rows));
}

/* rollup(sites, cohorts, groups, n_groups, n_epochs): sum packed site and cohort
 * rows into per-(group, epoch) arrays. `groups` maps stack id -> group (uint32,
 * native order; ids past its end, or mapped to 0xFFFFFFFF, are skipped); epochs
 * past n_epochs - 1 fold into the last. Returns five bytes objects of n_groups x
 * n_epochs doubles, group-major: allocated, freed, cohort live, cohort variance,
 * cohort samples. */
static PyObject *core_rollup(PyObject *self, PyObject *args)
{
    Py_buffer sites, cohorts, groups;
    Py_ssize_t ng, ne;
    if (!PyArg_ParseTuple(args, "y*y*y*nn", &sites, &cohorts, &groups, &ng, &ne)) {
        return NULL;
    }
    PyObject *out[5] = {NULL};
    PyObject *result = NULL;
    if (ng < 0 || ne < 1 || (ng > 0 && (size_t)ne > ((size_t)PY_SSIZE_T_MAX / 8) / (size_t)ng)) {
        PyErr_SetString(PyExc_ValueError, "bad rollup shape");
        goto done;
    }
    size_t cells = (size_t)ng * (size_t)ne;
    double *arr[5];
    for (int i = 0; i < 5; i++) {
        out[i] = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)((cells ? cells : 1) * sizeof(double)));
        if (out[i] == NULL) {
            goto done;
        }
        arr[i] = (double *)PyBytes_AS_STRING(out[i]);
        memset(arr[i], 0, (cells ? cells : 1) * sizeof(double));
    }
    const uint32_t *gmap = groups.buf;
    size_t nmap = (size_t)groups.len / sizeof(uint32_t);
    const mh_site_t *rows = sites.buf;
    size_t nrows = (size_t)sites.len / sizeof(mh_site_t);
    for (size_t i = 0; i < nrows; i++) {
        uint32_t st = mh_site_stack(&rows[i]);
        uint32_t ep = mh_site_epoch(&rows[i]);
        if (st >= nmap || gmap[st] >= (uint32_t)ng) {
            continue;
        }
        size_t cell = (size_t)gmap[st] * (size_t)ne + (ep < (uint32_t)ne ? ep : (size_t)ne - 1);
        arr[0][cell] += rows[i].alloc_bytes;
        arr[1][cell] += rows[i].free_bytes;
    }
    rows = cohorts.buf;
    nrows = (size_t)cohorts.len / sizeof(mh_site_t);
    for (size_t i = 0; i < nrows; i++) {
        uint32_t st = mh_site_stack(&rows[i]);
        uint32_t ep = mh_site_epoch(&rows[i]);
        if (st >= nmap || gmap[st] >= (uint32_t)ng) {
            continue;
        }
        size_t cell = (size_t)gmap[st] * (size_t)ne + (ep < (uint32_t)ne ? ep : (size_t)ne - 1);
        arr[2][cell] += rows[i].alloc_bytes;
        arr[3][cell] += rows[i].free_bytes;
        arr[4][cell] += rows[i].alloc_samples;
    }
    result = PyTuple_Pack(5, out[0], out[1], out[2], out[3], out[4]);
done:
    for (int i = 0; i < 5; i++) {
        Py_XDECREF(out[i]);
    }
    PyBuffer_Release(&sites);
    PyBuffer_Release(&cohorts);
    PyBuffer_Release(&groups);
    return result;
}

static PyObject *resolve_stacks(const mh_engine_copy_t *c)
{
    PyObject *cache = PyDict_New();
    PyObject *unknown = Py_BuildValue("(sis)", "<unknown>", 0, "<unknown>");
    PyObject *stacks = PyList_New((Py_ssize_t)c->n_stacks + 1); /* first_stack is 1 */
    if (cache == NULL || unknown == NULL || stacks == NULL) {
        goto error;
    }
    Py_INCREF(Py_None);
    PyList_SET_ITEM(stacks, 0, Py_None);
    for (uint32_t id = 1; id <= c->n_stacks; id++) {
        const mh_stack_info_t *in = &c->info[id - 1];
        PyObject *frames = PyTuple_New(in->depth);
        if (frames == NULL) {
            goto error;
        }
        for (int i = 0; i < in->depth; i++) {
            const mh_frame_t *f = &c->frames[in->off + (size_t)i];
            PyObject *fr;
            if (f->flags & MH_FRAME_UNPINNED) {
                fr = Py_NewRef(unknown);
            } else {
                PyObject *key = Py_BuildValue("(Ki)", (unsigned long long)f->code, f->instr);
                if (key == NULL) {
                    Py_DECREF(frames);
                    goto error;
                }
                fr = PyDict_GetItemWithError(cache, key);
                if (fr != NULL) {
                    Py_INCREF(fr);
                } else if (!PyErr_Occurred()) {
                    PyObject *file, *func;
                    int line;
                    mh_pyframes_resolve(f->code, f->instr, &file, &func, &line);
                    fr = Py_BuildValue("(NiN)", file, line, func);
                    if (fr != NULL && PyDict_SetItem(cache, key, fr) < 0) {
                        Py_CLEAR(fr);
                    }
                }
                Py_DECREF(key);
                if (fr == NULL) {
                    Py_DECREF(frames);
                    goto error;
                }
            }
            PyTuple_SET_ITEM(frames, i, fr);
        }
        PyObject *entry = Py_BuildValue("(NO)", frames,
                                        (in->flags & MH_STACK_TRUNCATED) ? Py_True : Py_False);
        if (entry == NULL) {
            goto error;
        }
        PyList_SET_ITEM(stacks, id, entry);
    }
    Py_DECREF(cache);
    Py_DECREF(unknown);
    return stacks;
error:
    Py_XDECREF(cache);
    Py_XDECREF(unknown);
    Py_XDECREF(stacks);
    return NULL;
}

static PyObject *core_snapshot(PyObject *self, PyObject *unused)
{
    if (!require_tracking()) {
        return NULL;
    }
    mh_engine_copy_t c;
    memset(&c, 0, sizeof c);
    mh_engine_lock();
    int rc = copy_locked(&c);
    mh_engine_unlock();
    if (rc != 0) {
        mh_engine_copy_free(&c, raw_release);
        return PyErr_NoMemory();
    }
    PyObject *result = NULL, *sites = NULL, *cohorts = NULL, *stacks = NULL, *epochs = NULL,
             *totals = NULL;
    sites = site_rows(c.sites, c.n_sites);
    cohorts = sites ? site_rows(c.cohorts, c.n_cohorts) : NULL;
    stacks = cohorts ? resolve_stacks(&c) : NULL;
    epochs = stacks ? PyList_New((Py_ssize_t)c.n_epochs) : NULL;
    if (epochs != NULL) {
        for (size_t i = 0; i < c.n_epochs; i++) {
            PyObject *v = PyFloat_FromDouble((double)c.epochs[i] / 1e9);
            if (v == NULL) {
                Py_CLEAR(epochs);
                break;
            }
            PyList_SET_ITEM(epochs, (Py_ssize_t)i, v);
        }
    }
    totals = epochs ? totals_dict(&c.totals, c.epoch, mh_sample_bytes, mh_engine.max_frames,
                                  c.live_entries, c.stacks, c.merges)
                    : NULL;
    if (totals != NULL) {
        PyObject *el = PyFloat_FromDouble((double)c.elapsed_ns / 1e9);
        if (el == NULL || PyDict_SetItemString(totals, "elapsed", el) < 0) {
            Py_CLEAR(totals);
        }
        Py_XDECREF(el);
    }
    if (totals != NULL) {
        result = Py_BuildValue("(OOOOO)", totals, sites, cohorts, stacks, epochs);
    }
    Py_XDECREF(sites);
    Py_XDECREF(cohorts);
    Py_XDECREF(stacks);
    Py_XDECREF(epochs);
    Py_XDECREF(totals);
    for (size_t i = 0; i < c.n_frames; i++) {
        if (!(c.frames[i].flags & MH_FRAME_UNPINNED)) {
            mh_pyframes_unref(c.frames[i].code);
        }
    }
    mh_engine_copy_free(&c, raw_release);
    return result;
}

static PyObject *core_ignore_thread(PyObject *self, PyObject *arg)
{
    int v = PyObject_IsTrue(arg);
    if (v < 0) {
        return NULL;
    }
    mh_tls.ignored = (uint32_t)v;
    mh_tls.gen = 0; /* Redraw the countdown on the next allocation. */
    Py_RETURN_NONE;
}

/* --epoch-on on 3.10 and 3.11 (mh_epochfn). */
static PyObject *core_set_epoch_function(PyObject *self, PyObject *args)
{
    PyObject *name, *qualname, *module;
    if (!PyArg_ParseTuple(args, "UOO", &name, &qualname, &module)) {
        return NULL;
    }
    if ((qualname != Py_None && !PyUnicode_Check(qualname)) ||
        (module != Py_None && !PyUnicode_Check(module))) {
        PyErr_SetString(PyExc_TypeError, "qualname and module must be str or None");
        return NULL;
    }
    if (mh_epochfn_set(name, qualname, module) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *core_install_epoch_profile(PyObject *self, PyObject *unused)
{
    if (mh_epochfn_install() < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *core_epoch_function_status(PyObject *self, PyObject *unused)
{
    unsigned long long h, d, r;
    mh_epochfn_status(&h, &d, &r);
    return Py_BuildValue("{s:K,s:K,s:K,s:O}", "hits", h, "displaced", d, "reinstalled", r,
                         "installed", mh_epochfn_installed() ? Py_True : Py_False);
}

static PyObject *core_clear_epoch_function(PyObject *self, PyObject *unused)
{
    return PyLong_FromUnsignedLongLong(mh_epochfn_clear());
}

static PyObject *core_sample_probability(PyObject *self, PyObject *args)
{
    unsigned long long size;
    long long sample_bytes;
    if (!PyArg_ParseTuple(args, "KL", &size, &sample_bytes)) {
        return NULL;
    }
    return PyFloat_FromDouble(mh_sample_probability((size_t)size, sample_bytes));
}

/* -- Retention and census (see mh_heap.h, analysis/retention.py) ---------- */

/* live_samples(stack_ids) -> bytes: the live sampled allocations of the given
 * stacks (bytes of native uint32 ids; None: all), packed as (ptr u64, size u64,
 * stack u32, epoch u32), 24 bytes each. Taken under tables_lock. */
static PyObject *core_live_samples(PyObject *self, PyObject *arg)
{
    Py_buffer ids = {0};
    int have_ids = arg != Py_None;
    if (have_ids && PyObject_GetBuffer(arg, &ids, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    if (!require_tracking()) {
        if (have_ids) {
            PyBuffer_Release(&ids);
        }
        return NULL;
    }
    typedef struct {
        uint64_t ptr, size;
        uint32_t stack, epoch;
    } row_t;
    row_t *rows = NULL;
    uint8_t *want = NULL;
    size_t n = 0;
    int oom = 0;
    mh_engine_lock();
    uint32_t n_stacks = mh_engine.stacks.count;
    rows = PyMem_RawMalloc((mh_engine.live.count ? mh_engine.live.count : 1) * sizeof *rows);
    want = PyMem_RawCalloc((size_t)n_stacks + 1, 1);
    if (rows == NULL || want == NULL) {
        oom = 1;
    } else {
        const uint32_t *sid = ids.buf;
        for (size_t i = 0; have_ids && i < (size_t)ids.len / sizeof(uint32_t); i++) {
            if (sid[i] <= n_stacks) {
                want[sid[i]] = 1;
            }
        }
        for (size_t i = 0; i < mh_engine.live.cap; i++) {
            const mh_live_entry_t *e = &mh_engine.live.slots[i];
            if (e->ptr == 0 || (have_ids && (e->stack > n_stacks || !want[e->stack]))) {
                continue;
            }
            rows[n].ptr = e->ptr;
            rows[n].size = e->size;
            rows[n].stack = e->stack;
            rows[n].epoch = e->epoch;
            n++;
        }
    }
    mh_engine_unlock();
    PyObject *out = oom ? PyErr_NoMemory()
                        : PyBytes_FromStringAndSize((const char *)rows, (Py_ssize_t)(n * sizeof *rows));
    PyMem_RawFree(rows);
    PyMem_RawFree(want);
    if (have_ids) {
        PyBuffer_Release(&ids);
    }
    return out;
}

/* "module.Qualname" of a class without running any code of its metaclass;
 * built-in types by their tp_name. New reference. */
static PyObject *type_name_of(PyTypeObject *tp, int qualified)
{
    if (!qualified) {
        const char *dot = strrchr(tp->tp_name, '.');
        if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
            PyObject *q = ((PyHeapTypeObject *)tp)->ht_qualname;
            if (q != NULL && PyUnicode_Check(q)) {
                return Py_NewRef(q);
            }
        }
        return PyUnicode_FromString(dot ? dot + 1 : tp->tp_name);
    }
    if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
        PyHeapTypeObject *ht = (PyHeapTypeObject *)tp;
        PyObject *mod = tp->tp_dict ? PyDict_GetItemString(tp->tp_dict, "__module__") : NULL;
        if (ht->ht_qualname != NULL && PyUnicode_Check(ht->ht_qualname)) {
            if (mod != NULL && PyUnicode_Check(mod) &&
                PyUnicode_CompareWithASCIIString(mod, "builtins") != 0) {
                return PyUnicode_FromFormat("%U.%U", mod, ht->ht_qualname);
            }
            return Py_NewRef(ht->ht_qualname);
        }
    }
    return PyUnicode_FromString(tp->tp_name);
}

static PyObject *core_type_name(PyObject *self, PyObject *args)
{
    PyObject *obj;
    int qualified = 0;
    if (!PyArg_ParseTuple(args, "O|p", &obj, &qualified)) {
        return NULL;
    }
    return type_name_of(Py_TYPE(obj), qualified);
}

static PyObject *heap_error(int rc)
{
    if (rc == MH_E2BIG) {
        PyErr_SetString(PyExc_OverflowError, "the heap has more objects than the limit");
        return NULL;
    }
    return PyErr_NoMemory();
}

/* alloc_start(obj) -> (address where its allocation starts, [buffer starts]). */
static PyObject *core_alloc_start(PyObject *self, PyObject *obj)
{
    uintptr_t buf[8];
    int nb = mh_heap_buffers(obj, buf, 8);
    PyObject *l = PyList_New(nb);
    if (l == NULL) {
        return NULL;
    }
    for (int i = 0; i < nb; i++) {
        PyObject *v = PyLong_FromUnsignedLongLong((unsigned long long)buf[i]);
        if (v == NULL) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, v);
    }
    return Py_BuildValue("(KN)", (unsigned long long)mh_heap_alloc_start(obj), l);
}

static PyObject *core_heap_sizeof(PyObject *self, PyObject *obj)
{
    return PyLong_FromSize_t(mh_heap_sizeof(obj));
}

/* forget_free_lists() -> int: report the sampled blocks parked on CPython's
 * free lists as freed (dead objects whose memory CPython kept); returns how
 * many. 0 when not tracking. */
static PyObject *core_forget_free_lists(PyObject *self, PyObject *unused)
{
    return PyLong_FromSize_t(mh_freelists_forget());
}

/* A sampled pointer -> sample index table (open addressing). */
typedef struct {
    const uint64_t *key; /* Pairs (ptr, group << 32). */
    uint32_t *slots;     /* Sample index + 1. */
    size_t cap;
} ptrmap_t;

static size_t ptr_slot(uint64_t p, size_t cap)
{
    return (size_t)(((p ^ (p >> 21)) * 0x9E3779B97F4A7C15ull) >> 17) & (cap - 1);
}

static uint32_t ptrmap_find(const ptrmap_t *m, uint64_t p)
{
    if (m->cap == 0) {
        return MH_HEAP_NONE;
    }
    for (size_t j = ptr_slot(p, m->cap);; j = (j + 1) & (m->cap - 1)) {
        uint32_t v = m->slots[j];
        if (v == 0) {
            return MH_HEAP_NONE;
        }
        if (m->key[2 * (size_t)(v - 1)] == p) {
            return v - 1;
        }
    }
}

typedef struct {
    uint32_t node;  /* Object (the owner, for a buffer). */
    uint32_t group;
    uint8_t kind;   /* 0: the object itself, 1: one of its buffers. */
} match_t;

static int match_cmp(const void *a, const void *b)
{
    const match_t *x = a, *y = b;
    if (x->group != y->group) {
        return x->group < y->group ? -1 : 1;
    }
    return x->node < y->node ? -1 : x->node > y->node;
}

/* The chain root..node as a tuple of objects, and the retained size of each. */
static PyObject *chain_of(const mh_heap_t *h, uint32_t node, int kind, Py_ssize_t n_roots)
{
    Py_ssize_t depth = 0;
    for (uint32_t v = node; v != MH_HEAP_NONE; v = h->parent[v]) {
        depth++;
    }
    PyObject *objs = PyTuple_New(depth);
    PyObject *sizes = PyTuple_New(depth);
    if (objs == NULL || sizes == NULL) {
        goto error;
    }
    uint32_t v = node, root = node;
    for (Py_ssize_t i = depth - 1; i >= 0; i--, v = h->parent[v]) {
        PyTuple_SET_ITEM(objs, i, Py_NewRef(h->obj[v]));
        PyObject *s = PyLong_FromUnsignedLongLong(h->retained ? h->retained[v] : h->self_size[v]);
        if (s == NULL) {
            goto error;
        }
        PyTuple_SET_ITEM(sizes, i, s);
        root = v;
    }
    /* Which root: its index in `roots`, -1 held from C code, -2 unreachable. */
    long which = root < (uint32_t)n_roots ? (long)root
                 : ((size_t)root >= h->garbage_from ? -2 : -1);
    return Py_BuildValue("(ilNN)", kind, which, objs, sizes);
error:
    Py_XDECREF(objs);
    Py_XDECREF(sizes);
    return NULL;
}

/* heap_retention(roots, extra, samples, n_groups, chains_per_group, max_nodes,
 * dominators) -> (stats, groups).
 *
 * roots: list of root objects (their order breaks ties between equally short
 * chains); extra: a list of GC-tracked objects (gc.get_objects()) whose
 * members not reached from the roots are added after them, held-from-C first,
 * or None; samples: packed (ptr u64, group u32, pad u32) sorted by group.
 * stats: (nodes, edges, roots, held, unreachable). groups[g]: (samples matched,
 * objects matched, their bytes, [(type name, count)], [chain]); a chain is
 * (kind, root index or -1/-2, objects root..target, retained bytes of each). */
static PyObject *core_heap_retention(PyObject *self, PyObject *args)
{
    PyObject *roots, *extra;
    Py_buffer samples;
    Py_ssize_t n_groups, per_group, max_nodes;
    int want_dom;
    if (!PyArg_ParseTuple(args, "O!Oy*nnnp", &PyList_Type, &roots, &extra, &samples,
                          &n_groups, &per_group, &max_nodes, &want_dom)) {
        return NULL;
    }
    if (extra != Py_None && !PyList_Check(extra)) {
        PyBuffer_Release(&samples);
        PyErr_SetString(PyExc_TypeError, "extra must be a list or None");
        return NULL;
    }
    int gc_was = PyGC_Disable();
    mh_heap_t h;
    ptrmap_t pm = {0};
    match_t *matches = NULL;
    size_t n_matches = 0, held = 0, garbage = 0;
    uint32_t *stamp = NULL;
    PyObject *result = NULL, *groups = NULL;
    int rc = mh_heap_new(&h, max_nodes > 0 ? (size_t)max_nodes : SIZE_MAX, 1);
    Py_ssize_t n_roots = PyList_GET_SIZE(roots);
    for (Py_ssize_t i = 0; rc == 0 && i < n_roots; i++) {
        uint32_t id;
        rc = mh_heap_add_root(&h, PyList_GET_ITEM(roots, i), &id);
    }
    /* Distinct roots are nodes 0..k-1; a repeated root maps to the first. */
    Py_ssize_t root_nodes = (Py_ssize_t)h.n;
    if (rc == 0) {
        rc = mh_heap_expand(&h);
    }
    if (rc == 0 && extra != Py_None) {
        rc = mh_heap_add_unreached(&h, extra, &held, &garbage);
    }
    if (rc == 0 && want_dom) {
        rc = mh_heap_dominators(&h);
    }
    if (rc != 0) {
        heap_error(rc);
        goto done;
    }
    /* Sampled pointers. */
    size_t ns = (size_t)samples.len / 16;
    const uint64_t *sk = samples.buf;
    pm.key = sk;
    pm.cap = 16;
    while (pm.cap < ns * 2 + 2) {
        pm.cap *= 2;
    }
    pm.slots = PyMem_RawCalloc(pm.cap, sizeof *pm.slots);
    matches = PyMem_RawMalloc((ns ? ns : 1) * sizeof *matches);
    if (pm.slots == NULL || matches == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t i = 0; i < ns; i++) {
        size_t j = ptr_slot(sk[2 * i], pm.cap);
        while (pm.slots[j] != 0 && sk[2 * (size_t)(pm.slots[j] - 1)] != sk[2 * i]) {
            j = (j + 1) & (pm.cap - 1);
        }
        pm.slots[j] = (uint32_t)i + 1;
    }
    for (size_t v = 0; ns > 0 && v < h.n; v++) {
        PyObject *o = h.obj[v];
        uintptr_t buf[8];
        uint32_t s = ptrmap_find(&pm, mh_heap_alloc_start(o));
        if (s != MH_HEAP_NONE) {
            matches[n_matches++] = (match_t){(uint32_t)v, (uint32_t)(sk[2 * s + 1] & 0xFFFFFFFF), 0};
        }
        int nb = mh_heap_buffers(o, buf, 8);
        for (int b = 0; b < nb && n_matches < ns; b++) {
            s = ptrmap_find(&pm, buf[b]);
            if (s != MH_HEAP_NONE) {
                matches[n_matches++] = (match_t){(uint32_t)v, (uint32_t)(sk[2 * s + 1] & 0xFFFFFFFF), 1};
            }
        }
        if (n_matches >= ns) {
            break;
        }
    }
    qsort(matches, n_matches, sizeof *matches, match_cmp);
    groups = PyList_New(n_groups);
    if (groups == NULL) {
        goto done;
    }
    size_t m = 0;
    for (Py_ssize_t g = 0; g < n_groups; g++) {
        while (m < n_matches && matches[m].group < (uint32_t)g) {
            m++;
        }
        size_t first = m, last = m;
        while (last < n_matches && matches[last].group == (uint32_t)g) {
            last++;
        }
        /* Distinct objects of the group, their bytes and types. */
        size_t n_obj = 0;
        unsigned long long bytes = 0;
        PyObject *types = PyDict_New();
        PyObject *chains = PyList_New(0);
        PyObject *entry = NULL;
        if (types == NULL || chains == NULL) {
            Py_XDECREF(types);
            Py_XDECREF(chains);
            goto done;
        }
        for (size_t k = first; k < last; k++) {
            if (k > first && matches[k].node == matches[k - 1].node) {
                continue;
            }
            n_obj++;
            bytes += h.self_size[matches[k].node];
            PyObject *tn = type_name_of(Py_TYPE(h.obj[matches[k].node]), 0);
            PyObject *c = tn ? PyDict_GetItemWithError(types, tn) : NULL;
            long cnt = c ? PyLong_AsLong(c) : 0;
            PyObject *nc = tn && !PyErr_Occurred() ? PyLong_FromLong(cnt + 1) : NULL;
            int bad = nc == NULL || PyDict_SetItem(types, tn, nc) < 0;
            Py_XDECREF(tn);
            Py_XDECREF(nc);
            if (bad) {
                Py_DECREF(types);
                Py_DECREF(chains);
                goto done;
            }
        }
        /* Chains for up to per_group objects, spread evenly over the matches
         * (which are in BFS order: the shallowest first). */
        size_t span = last - first;
        size_t want = span < (size_t)per_group ? span : (size_t)per_group;
        for (size_t k = 0; k < want; k++) {
            size_t idx = first + (want > 1 ? k * (span - 1) / (want - 1) : 0);
            PyObject *ch = chain_of(&h, matches[idx].node, matches[idx].kind, root_nodes);
            if (ch == NULL || PyList_Append(chains, ch) < 0) {
                Py_XDECREF(ch);
                Py_DECREF(types);
                Py_DECREF(chains);
                goto done;
            }
            Py_DECREF(ch);
        }
        entry = Py_BuildValue("(nnKNN)", (Py_ssize_t)span, (Py_ssize_t)n_obj, bytes,
                              PyDict_Items(types), chains);
        Py_DECREF(types);
        if (entry == NULL) {
            goto done;
        }
        PyList_SET_ITEM(groups, g, entry);
    }
    result = Py_BuildValue("((nnnnn)O)", (Py_ssize_t)h.n, (Py_ssize_t)h.ne, root_nodes,
                           (Py_ssize_t)held, (Py_ssize_t)garbage, groups);
done:
    Py_XDECREF(groups);
    PyMem_RawFree(stamp);
    PyMem_RawFree(matches);
    PyMem_RawFree(pm.slots);
    mh_heap_free(&h);
    PyBuffer_Release(&samples);
    if (gc_was) {
        PyGC_Enable();
    }
    return result;
}

/* heap_census(objects, max_nodes) -> [(type name, count)]: every object
 * reachable from `objects` (a list), counted by type; the list itself is not
 * counted. */
static PyObject *core_heap_census(PyObject *self, PyObject *args)
{
    PyObject *objs;
    Py_ssize_t max_nodes;
    if (!PyArg_ParseTuple(args, "O!n", &PyList_Type, &objs, &max_nodes)) {
        return NULL;
    }
    int gc_was = PyGC_Disable();
    PyObject *result = NULL;
    mh_heap_t h, types;
    int rc = mh_heap_new(&h, max_nodes > 0 ? (size_t)max_nodes : SIZE_MAX, 0);
    int rc2 = mh_heap_new(&types, SIZE_MAX, 0);
    uint32_t *counts = NULL;
    size_t cap = 0;
    if (rc == 0) {
        rc = rc2;
    }
    for (Py_ssize_t i = 0; rc == 0 && i < PyList_GET_SIZE(objs); i++) {
        uint32_t id;
        rc = mh_heap_add_root(&h, PyList_GET_ITEM(objs, i), &id);
    }
    if (rc == 0) {
        rc = mh_heap_expand(&h);
    }
    /* Count by type, in a second (edge-less) graph whose nodes are the types. */
    for (size_t i = 0; rc == 0 && i < h.n; i++) {
        uint32_t t;
        rc = mh_heap_add_root(&types, (PyObject *)Py_TYPE(h.obj[i]), &t);
        if (rc == 0 && t >= cap) {
            size_t ncap = cap ? cap * 2 : 256;
            uint32_t *a = PyMem_RawRealloc(counts, ncap * sizeof *a);
            if (a == NULL) {
                rc = MH_ENOMEM;
                break;
            }
            memset(a + cap, 0, (ncap - cap) * sizeof *a);
            counts = a;
            cap = ncap;
        }
        if (rc == 0) {
            counts[t]++;
        }
    }
    if (rc != 0) {
        heap_error(rc);
        goto done;
    }
    result = PyList_New((Py_ssize_t)types.n);
    for (size_t t = 0; result != NULL && t < types.n; t++) {
        PyObject *row = Py_BuildValue("(NI)", type_name_of((PyTypeObject *)types.obj[t], 1),
                                      (unsigned)counts[t]);
        if (row == NULL) {
            Py_CLEAR(result);
            break;
        }
        PyList_SET_ITEM(result, (Py_ssize_t)t, row);
    }
done:
    PyMem_RawFree(counts);
    mh_heap_free(&h);
    mh_heap_free(&types);
    if (gc_was) {
        PyGC_Enable();
    }
    return result;
}

static PyMethodDef methods[] = {
    {"start", core_start, METH_VARARGS,
     "start(sample_bytes, max_frames, seed): install the hooks and start a run."},
    {"stop", core_stop, METH_NOARGS,
     "stop() -> bool: remove the hooks; False if another tool had wrapped them."},
    {"is_tracking", core_is_tracking, METH_NOARGS, "is_tracking() -> bool"},
    {"next_epoch", core_end_unit, METH_NOARGS, "next_epoch() -> int: close the epoch."},
    {"end_unit", core_end_unit, METH_NOARGS,
     "end_unit() -> int: a unit of work ended; every `stride` units close an epoch."},
    {"set_max_epochs", core_set_max_epochs, METH_O,
     "set_max_epochs(n): merge epochs pairwise (doubling the stride) when n are reached; 0 = never."},
    {"merge_epochs", core_merge_epochs, METH_NOARGS,
     "merge_epochs() -> int: merge epochs pairwise (2k, 2k+1 -> k); returns the current epoch."},
    {"totals", core_totals, METH_NOARGS, "totals() -> dict of running totals."},
    {"snapshot", core_snapshot, METH_NOARGS,
     "snapshot() -> (totals, sites, cohorts, stacks, epochs): raw tables."},
    {"ignore_thread", core_ignore_thread, METH_O,
     "ignore_thread(flag): never sample this thread's allocations (memhound's own threads)."},
    {"set_epoch_function", core_set_epoch_function, METH_VARARGS,
     "set_epoch_function(name, qualname, module): the function whose returns close epochs."},
    {"install_epoch_profile", core_install_epoch_profile, METH_NOARGS,
     "install_epoch_profile(): watch returns of the epoch function on this thread."},
    {"epoch_function_status", core_epoch_function_status, METH_NOARGS,
     "epoch_function_status() -> dict: hits, displaced (another profile function took the "
     "slot), reinstalled (memhound's was put back), installed (on this thread)."},
    {"clear_epoch_function", core_clear_epoch_function, METH_NOARGS,
     "clear_epoch_function() -> int: stop watching; returns how many epochs it closed."},
    {"rollup", core_rollup, METH_VARARGS,
     "rollup(sites, cohorts, groups, n_groups, n_epochs) -> 5 bytes of doubles per (group, epoch)."},
    {"sample_probability", core_sample_probability, METH_VARARGS,
     "sample_probability(size, sample_bytes) -> float: p(size) = 1 - exp(-size/R)."},
    {"bg_start", core_bg_start, METH_VARARGS,
     "bg_start(tick, window, flush, path, meta_json, started_unix): start the background "
     "thread (timeline, time epochs, and with a path the capture file)."},
    {"bg_stop", core_bg_stop, METH_VARARGS,
     "bg_stop(status, exit_code, end_json) -> str | None: last flush, record the end; "
     "returns the capture's last error."},
    {"bg_after_fork", core_bg_after_fork, METH_O,
     "bg_after_fork(started_unix) -> str | None: in a forked child, restart the thread "
     "with a capture of the child's own."},
    {"bg_pause", core_bg_pause, METH_NOARGS,
     "bg_pause() -> bool: stop the background thread without a last flush (before fork)."},
    {"bg_resume_later", core_bg_resume_later, METH_O,
     "bg_resume_later(caller_frame): restart the paused thread once os.fork() has returned "
     "to caller_frame (main thread, next check of the eval loop)."},
    {"bg_forget_after_fork", core_bg_forget_after_fork, METH_NOARGS,
     "bg_forget_after_fork(): in a forked child about to start its own run, drop the "
     "parent's thread state."},
    {"bg_status", core_bg_status, METH_NOARGS,
     "bg_status() -> dict(running, peak_rss, error)."},
    {"timeline", core_timeline, METH_NOARGS,
     "timeline() -> [(seconds, rss, tracked, heap | None, own | None)]: the background thread's\n"
     "ring; own is memhound's own memory (its tables, buffers and capture writer), part of rss."},
    {"timeline_last", core_timeline_last, METH_NOARGS,
     "timeline_last() -> the newest timeline point, or None."},
    /* Retention and census. */
    {"live_samples", core_live_samples, METH_O,
     "live_samples(stack_ids or None) -> bytes: live samples as (ptr u64, size u64, stack u32, epoch u32)."},
    {"heap_retention", core_heap_retention, METH_VARARGS,
     "heap_retention(roots, extra, samples, n_groups, chains_per_group, max_nodes, dominators)."},
    {"heap_census", core_heap_census, METH_VARARGS,
     "heap_census(objects, max_nodes) -> [(type name, count)] of everything reachable."},
    {"type_name", core_type_name, METH_VARARGS,
     "type_name(obj, qualified=False) -> str: (module.)qualname of its type, without running its code."},
    {"alloc_start", core_alloc_start, METH_O,
     "alloc_start(obj) -> (address of its allocation, [addresses of its buffers])."},
    {"heap_sizeof", core_heap_sizeof, METH_O,
     "heap_sizeof(obj) -> int: sys.getsizeof without calling Python-level __sizeof__."},
    {"forget_free_lists", core_forget_free_lists, METH_NOARGS,
     "forget_free_lists() -> int: sampled blocks on CPython's free lists become freed; how many."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "memhound._core", "memhound's C tracking core.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__core(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "MAX_FRAMES_CAP", MH_MAX_FRAMES_CAP) < 0 ||
        PyModule_AddIntConstant(m, "SITE_ROW_SIZE", (long)sizeof(mh_site_t)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
