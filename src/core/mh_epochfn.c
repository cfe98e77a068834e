/* mh_epochfn: --epoch-on's profile function. See mh_epochfn.h. */
#define Py_BUILD_CORE 1
#include <Python.h>
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
#else
#include <frameobject.h>
#endif

#include <string.h>
#if PY_VERSION_HEX < 0x030C0000
#include <opcode.h>
#endif

#include "mh_engine.h"
#include "mh_epochfn.h"

/* All of these: GIL. */
static PyObject *epoch_name;     /* Interned last component of the qualname. */
static PyObject *epoch_qualname; /* Full qualname, or NULL. */
static PyObject *epoch_parts;    /* 3.10: the qualname split at dots (a list), or NULL. */
static PyObject *epoch_module;   /* Module name, or NULL for any. */
static PyObject *epoch_target;   /* The code object last matched (strong). */
#define N_REJECTED 8
static PyObject *rejected[N_REJECTED]; /* Code objects with the name, not the function (strong). */
static int n_rejected;
static unsigned long long hits, displaced, reinstalled;
static int installing;      /* memhound itself is setting the profile function. */
static int audit_added;     /* The audit hook is in place (for the process's life). */
static int check_scheduled; /* A pending call will look at the main thread's slot. */

static int epoch_profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg);

/* 1 if the return event is a suspension (a generator's yield, a coroutine's
 * await): the frame is then suspended, not finished. */
static int frame_suspends(PyFrameObject *frame)
{
#if PY_VERSION_HEX < 0x030B0000
    /* 3.10: YIELD_VALUE and YIELD_FROM set the frame's state before the event. */
    return frame->f_state == FRAME_SUSPENDED;
#else
    /* 3.11+: the state lives in the generator (or coroutine) that owns the
     * frame; YIELD_VALUE sets it before the event, a return leaves it
     * executing until the event has fired. */
    _PyInterpreterFrame *f = frame->f_frame;
    if (f == NULL || f->owner != FRAME_OWNED_BY_GENERATOR) {
        return 0;
    }
    return _PyFrame_GetGenerator(f)->gi_frame_state == FRAME_SUSPENDED;
#endif
}

/* 1 if an exception exit (arg NULL) is a suspended generator or coroutine
 * being closed (or thrown into) at its yield: close() and garbage collection
 * raise GeneratorExit there. Such a call never completed; from 3.12 close()
 * often finishes the frame without running it, so no event fires at all. */
static int closed_at_yield(PyFrameObject *frame)
{
#if PY_VERSION_HEX < 0x030B0000
    PyCodeObject *co = frame->f_code;
    if (!(co->co_flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR)) || frame->f_lasti < 0) {
        return 0;
    }
    const _Py_CODEUNIT *code = (const _Py_CODEUNIT *)PyBytes_AS_STRING(co->co_code);
    return _Py_OPCODE(code[frame->f_lasti]) == YIELD_VALUE;
#elif PY_VERSION_HEX < 0x030C0000
    _PyInterpreterFrame *f = frame->f_frame;
    if (f == NULL || f->owner != FRAME_OWNED_BY_GENERATOR) {
        return 0;
    }
    const _Py_CODEUNIT *at = f->prev_instr;
    return at >= _PyCode_CODE(f->f_code) && _Py_OPCODE(*at) == YIELD_VALUE;
#else
    (void)frame; /* Not used from 3.12 (sys.monitoring watches the function). */
    return 0;
#endif
}

static PyObject *frame_globals(PyFrameObject *frame)
{
#if PY_VERSION_HEX < 0x030B0000
    return frame->f_globals; /* Borrowed. */
#else
    return frame->f_frame->f_globals; /* Borrowed. */
#endif
}

#if PY_VERSION_HEX < 0x030B0000
/* 3.10 code objects have no qualified name: follow the qualified name from the
 * frame's module globals (class attributes through the MRO, without running
 * any Python code) to a function, and compare its code object. Returns 1 (it is
 * the function), 0 (it is another one: rejected for good) or -1 (the name
 * leads nowhere yet). A name with <locals> cannot be followed: the function's
 * name alone decides. */
static int qualname_matches(PyCodeObject *co, PyFrameObject *frame)
{
    Py_ssize_t n = PyList_GET_SIZE(epoch_parts);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyUnicode_CompareWithASCIIString(PyList_GET_ITEM(epoch_parts, i), "<locals>") == 0) {
            return 1;
        }
    }
    PyObject *globals = frame_globals(frame);
    if (globals == NULL || !PyDict_Check(globals)) {
        return -1;
    }
    PyObject *obj = PyDict_GetItemWithError(globals, PyList_GET_ITEM(epoch_parts, 0));
    for (Py_ssize_t i = 1; obj != NULL && i < n; i++) {
        PyObject *part = PyList_GET_ITEM(epoch_parts, i);
        if (PyType_Check(obj)) {
            obj = _PyType_Lookup((PyTypeObject *)obj, part);
        } else if (PyModule_Check(obj)) {
            obj = PyDict_GetItemWithError(PyModule_GetDict(obj), part);
        } else {
            obj = NULL;
        }
    }
    if (obj == NULL) {
        PyErr_Clear();
        return -1;
    }
    /* staticmethod and classmethod wrap the function; functools.wraps leaves
     * the wrapped one in __wrapped__. */
    for (int depth = 0; obj != NULL && depth < 8; depth++) {
        PyObject *next = NULL;
        if (Py_IS_TYPE(obj, &PyStaticMethod_Type) || Py_IS_TYPE(obj, &PyClassMethod_Type)) {
            next = PyObject_GetAttrString(obj, "__func__");
        } else if (PyFunction_Check(obj)) {
            if (PyFunction_GET_CODE(obj) == (PyObject *)co) {
                /* An inherited method is found through a subclass too, but its
                 * qualified name is its own class's (as co_qualname from 3.11). */
                PyObject *qn = ((PyFunctionObject *)obj)->func_qualname;
                return qn != NULL && PyUnicode_Check(qn) &&
                       PyUnicode_Compare(qn, epoch_qualname) == 0;
            }
            PyObject *d = ((PyFunctionObject *)obj)->func_dict;
            next = d ? PyDict_GetItemString(d, "__wrapped__") : NULL;
            Py_XINCREF(next);
        }
        if (next == NULL) {
            PyErr_Clear();
            break;
        }
        Py_DECREF(next); /* Kept alive by its holder (the class, the wrapper). */
        obj = next;
    }
    return 0;
}
#endif

/* 1 if the code object (run by `frame`) is the watched function. */
static int code_matches(PyCodeObject *co, PyFrameObject *frame)
{
    if (co->co_name != epoch_name) {
        return 0;
    }
    for (int i = 0; i < n_rejected; i++) {
        if (rejected[i] == (PyObject *)co) {
            return 0;
        }
    }
    if (epoch_module != NULL) {
        PyObject *globals = frame_globals(frame);
        PyObject *name = globals && PyDict_Check(globals)
                             ? PyDict_GetItemString(globals, "__name__")
                             : NULL;
        if (name == NULL || !PyUnicode_Check(name) || PyUnicode_Compare(name, epoch_module) != 0) {
            return 0;
        }
    }
    if (epoch_qualname == NULL) {
        return 1;
    }
#if PY_VERSION_HEX >= 0x030B0000
    int m = PyUnicode_Compare(co->co_qualname, epoch_qualname) == 0;
#else
    int m = qualname_matches(co, frame);
    if (m < 0) {
        return 0;
    }
#endif
    if (!m && n_rejected < N_REJECTED) {
        rejected[n_rejected++] = Py_NewRef((PyObject *)co);
    }
    return m;
}

static int epoch_profile(PyObject *obj, PyFrameObject *frame, int what, PyObject *arg)
{
    if (what != PyTrace_RETURN || epoch_name == NULL) {
        return 0;
    }
    PyCodeObject *co = PyFrame_GetCode(frame);
    int hit = (PyObject *)co == epoch_target;
    if (!hit && code_matches(co, frame)) {
        Py_XSETREF(epoch_target, Py_NewRef((PyObject *)co));
        hit = 1;
    }
    Py_DECREF(co);
    if (hit && !frame_suspends(frame) && !(arg == NULL && closed_at_yield(frame)) &&
        atomic_load(&mh_sample_gen) != 0) {
        mh_engine_lock();
        mh_engine_end_unit_locked();
        mh_engine_unlock();
        hits++;
    }
    return 0;
}

static void set_profile(Py_tracefunc fn)
{
    installing = 1;
    PyEval_SetProfile(fn, NULL);
    installing = 0;
}

/* Pending call, main thread: has another tool taken the slot, or let it go? */
static int check_slot(void *unused)
{
    (void)unused;
    check_scheduled = 0;
    if (epoch_name == NULL) {
        return 0;
    }
    PyThreadState *ts = PyThreadState_Get();
    if (ts->c_profilefunc == epoch_profile) {
        return 0;
    }
    if (ts->c_profilefunc == NULL) {
        set_profile(epoch_profile);
        reinstalled++;
    } else {
        displaced++;
    }
    return 0;
}

/* Runs before the change it announces: look after it, at the next check of
 * the eval loop. */
static int audit_hook(const char *event, PyObject *args, void *unused)
{
    (void)args;
    (void)unused;
    if (epoch_name != NULL && !installing && !check_scheduled &&
        strcmp(event, "sys.setprofile") == 0) {
        if (Py_AddPendingCall(check_slot, NULL) == 0) {
            check_scheduled = 1;
        }
    }
    return 0;
}

static void drop_state(void)
{
    Py_CLEAR(epoch_name);
    Py_CLEAR(epoch_qualname);
    Py_CLEAR(epoch_parts);
    Py_CLEAR(epoch_module);
    Py_CLEAR(epoch_target);
    for (int i = 0; i < n_rejected; i++) {
        Py_CLEAR(rejected[i]);
    }
    n_rejected = 0;
}

int mh_epochfn_set(PyObject *name, PyObject *qualname, PyObject *module)
{
    drop_state();
    if (qualname != Py_None) {
        PyObject *dot = PyUnicode_FromString(".");
        epoch_parts = dot ? PyUnicode_Split(qualname, dot, -1) : NULL;
        Py_XDECREF(dot);
        if (epoch_parts == NULL) {
            return -1;
        }
        epoch_qualname = Py_NewRef(qualname);
    }
    if (!audit_added) {
        if (PySys_AddAuditHook(audit_hook, NULL) < 0) {
            drop_state();
            return -1;
        }
        audit_added = 1;
    }
    Py_INCREF(name);
    PyUnicode_InternInPlace(&name);
    epoch_name = name;
    epoch_module = module == Py_None ? NULL : Py_NewRef(module);
    hits = displaced = reinstalled = 0;
    return 0;
}

int mh_epochfn_install(void)
{
    set_profile(epoch_profile);
    return 0;
}

int mh_epochfn_installed(void)
{
    return PyThreadState_Get()->c_profilefunc == epoch_profile;
}

void mh_epochfn_status(unsigned long long *h, unsigned long long *d, unsigned long long *r)
{
    *h = hits;
    *d = displaced;
    *r = reinstalled;
}

unsigned long long mh_epochfn_clear(void)
{
    if (mh_epochfn_installed()) {
        set_profile(NULL);
    }
    drop_state();
    return hits;
}
