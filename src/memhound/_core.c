/* memhound._core: the thin binding between the C engine and the Python API.
 * It returns ints, floats, tuples and lists; classes, grouping and reports live
 * in Python. The only file of the core that raises Python exceptions. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>

#include <string.h>
#include <unistd.h>

#include "_core.h"
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
int mh_binding_require_tracking(void)
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

/* bg_start(tick, window, flush, path, meta_json, started_unix, alloc_quantum=0):
 * start the background thread: a timeline point every `tick` seconds, a unit of
 * work ended every `window` seconds (0: none), and with `path`, a capture
 * flushed every `flush` seconds. With `alloc_quantum` > 0, every that many bytes
 * of estimated allocation are a unit too (the allocation clock, kept by the
 * hooks). */
static PyObject *core_bg_start(PyObject *self, PyObject *args)
{
    double tick, window, flush, started;
    const char *path = NULL, *meta = NULL;
    long long quantum = 0;
    if (!PyArg_ParseTuple(args, "dddzsd|L", &tick, &window, &flush, &path, &meta, &started,
                          &quantum)) {
        return NULL;
    }
    if (!mh_binding_require_tracking()) {
        return NULL;
    }
    if (!(tick > 0 && tick < 60) || !(window >= 0 && window < 3600) || !(flush > 0 && flush < 3600)) {
        PyErr_SetString(PyExc_ValueError, "bad background thread periods");
        return NULL;
    }
    if (quantum < 0) {
        PyErr_SetString(PyExc_ValueError, "alloc_quantum must be 0 (off) or a number of bytes");
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
                          (uint64_t)(flush * 1e9), (uint64_t)quantum};
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
    if (!mh_binding_require_tracking()) {
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
    if (!mh_binding_require_tracking()) {
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
    if (!mh_binding_require_tracking()) {
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
    if (!mh_binding_require_tracking()) {
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
     "bg_start(tick, window, flush, path, meta_json, started_unix, alloc_quantum=0): start the "
     "background thread (timeline, time epochs, and with a path the capture file); "
     "alloc_quantum > 0 also closes epochs on allocation."},
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
    if (PyModule_AddFunctions(m, mh_binding_heap_methods) < 0 ||
        PyModule_AddIntConstant(m, "MAX_FRAMES_CAP", MH_MAX_FRAMES_CAP) < 0 ||
        PyModule_AddIntConstant(m, "SITE_ROW_SIZE", (long)sizeof(mh_site_t)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
