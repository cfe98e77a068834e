/* mh_pyframes: CPython frame walking, one section per version. The internal
 * frame layout is read through CPython's own internal headers, so a layout that
 * does not match the interpreter being built for fails to compile rather than
 * reading garbage. */
#define Py_BUILD_CORE 1
#include <Python.h>
#if PY_VERSION_HEX >= 0x030B0000
#include <internal/pycore_frame.h>
#else
#include <frameobject.h>
#endif

#include "mh_pyframes.h"

#if PY_VERSION_HEX < 0x030A0000 || PY_VERSION_HEX >= 0x030E0000
#error "memhound supports CPython 3.10 to 3.13"
#endif

int mh_pyframes_walk(mh_frame_t *frames, int max, unsigned *flags, uint64_t *hash)
{
    int depth = 0;
    uint64_t h = 0;
    *flags = 0;
    /* The thread's own state, read from thread-local storage: valid with or
     * without the GIL, NULL for threads Python does not know. */
    PyThreadState *ts = PyGILState_GetThisThreadState();
    if (ts == NULL || !Py_IsInitialized()) {
        goto done;
    }
#define MH_ADD_FRAME(CODE, INSTR)                                   \
    do {                                                            \
        if (depth == max) {                                         \
            *flags |= MH_STACK_TRUNCATED;                           \
            goto done;                                              \
        }                                                           \
        frames[depth].code = (uintptr_t)(CODE);                     \
        frames[depth].instr = (INSTR);                              \
        frames[depth].flags = 0;                                    \
        h += mh_stack_hash_frame((uintptr_t)(CODE), (INSTR), depth); \
        depth++;                                                    \
    } while (0)
    /* Another interpreter's frames are never walked: its code objects belong
     * to it (from 3.12 to its own allocator) and may die with it, so they must
     * not be pinned here or released later by the main interpreter. The stack
     * is one placeholder frame. From 3.12 the thread's bound state follows the
     * interpreter it runs in; on 3.10 and 3.11 it stays the first one the
     * thread had, so the main thread running a subinterpreter's code keeps the
     * main interpreter's stack (the call that runs it). */
    if (ts->interp != PyInterpreterState_Main()) {
        MH_ADD_FRAME(MH_CODE_SUBINTERP, 0);
        goto done;
    }
#if PY_VERSION_HEX < 0x030B0000
    /* 3.10: a linked list of frame objects; f_lasti counts code units. */
    for (PyFrameObject *f = ts->frame; f != NULL; f = f->f_back) {
        MH_ADD_FRAME(f->f_code, f->f_lasti);
    }
#else
#if PY_VERSION_HEX < 0x030D0000
    /* 3.11, 3.12: interpreter frames hang off the C frame. */
    _PyInterpreterFrame *f = ts->cframe ? ts->cframe->current_frame : NULL;
#else
    /* 3.13: the thread state points at the current frame directly. */
    _PyInterpreterFrame *f = ts->current_frame;
#endif
    for (; f != NULL; f = f->previous) {
#if PY_VERSION_HEX >= 0x030C0000
        if (f->owner == FRAME_OWNED_BY_CSTACK) {
            continue; /* Shim frame of a C-to-Python call. */
        }
#endif
#if PY_VERSION_HEX >= 0x030D0000
        PyObject *ex = f->f_executable;
        if (ex == NULL || !PyCode_Check(ex)) {
            continue;
        }
        PyCodeObject *co = (PyCodeObject *)ex;
        _Py_CODEUNIT *ip = f->instr_ptr;
#else
        PyCodeObject *co = f->f_code;
        _Py_CODEUNIT *ip = f->prev_instr;
#endif
        _Py_CODEUNIT *start = _PyCode_CODE(co);
        /* An incomplete frame, wherever it is in the stack, is skipped, as
         * CPython's own walkers do (_PyFrame_IsIncomplete, PyFrame_GetBack):
         * a frame still in its prologue has no line yet, and 3.13's shim frame
         * between a class call and its __init__ (code _Py_InitCleanup, pushed
         * by CALL_ALLOC_AND_ENTER_INIT) never leaves its prologue. */
        if (f->owner != FRAME_OWNED_BY_GENERATOR && ip < start + co->_co_firsttraceable) {
            continue;
        }
        MH_ADD_FRAME(co, (int)(ip - start));
    }
#endif
#undef MH_ADD_FRAME
done:
    *hash = mh_stack_hash_finish(h, depth, *flags);
    return depth;
}

int mh_pyframes_pin(uintptr_t code)
{
    if (code == MH_CODE_SUBINTERP) {
        return 1; /* A constant: nothing to hold. */
    }
    /* PyGILState_Check() is not used: it answers 1 unconditionally once a
     * subinterpreter has been created (CPython turns its check off). This is
     * its test without the switch: the thread's current state (the GIL
     * holder's on 3.10 and 3.11, the thread's own attached state from 3.12)
     * is the thread's own, in the main interpreter. */
#if PY_VERSION_HEX >= 0x030D0000
    PyThreadState *cur = PyThreadState_GetUnchecked();
#else
    PyThreadState *cur = _PyThreadState_UncheckedGet();
#endif
    if (cur == NULL || cur != PyGILState_GetThisThreadState() ||
        cur->interp != PyInterpreterState_Main()) {
        return 0;
    }
    Py_INCREF((PyObject *)code);
    return 1;
}

void mh_pyframes_ref(uintptr_t code)
{
    if (code != MH_CODE_SUBINTERP) {
        Py_INCREF((PyObject *)code);
    }
}

void mh_pyframes_unref(uintptr_t code)
{
    if (code != MH_CODE_SUBINTERP) {
        Py_DECREF((PyObject *)code);
    }
}

/* The line of an instruction; an instruction without a line of its own (some
 * compiler-made cleanup code) gets the function's first line, never -1. */
static int line_of(PyCodeObject *co, int32_t instr)
{
    int line = PyCode_Addr2Line(co, instr * (int)sizeof(_Py_CODEUNIT));
    return line >= 0 ? line : co->co_firstlineno;
}

int mh_pyframes_resolve(uintptr_t code, int32_t instr, PyObject **filename,
                        PyObject **function, int *lineno)
{
    if (code == MH_CODE_SUBINTERP) {
        *lineno = 0;
        *filename = PyUnicode_FromString(MH_SUBINTERP_NAME);
        *function = *filename ? PyUnicode_FromString(MH_SUBINTERP_NAME) : NULL;
        if (*function == NULL) {
            Py_CLEAR(*filename);
            return -1;
        }
        return 0;
    }
    PyCodeObject *co = (PyCodeObject *)code;
    *lineno = line_of(co, instr);
    *filename = Py_NewRef(co->co_filename);
#if PY_VERSION_HEX >= 0x030B0000
    *function = Py_NewRef(co->co_qualname);
#else
    *function = Py_NewRef(co->co_name);
#endif
    return 0;
}

/* UTF-8 of a str without the GIL and without allocating: code objects'
 * strings are immutable and, for a pinned code object, stay alive. */
static void utf8_copy(PyObject *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) {
        return;
    }
    if (s == NULL || !PyUnicode_Check(s)) {
        snprintf(out, cap, "<unknown>");
        return;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (!PyUnicode_IS_READY(s)) {
        snprintf(out, cap, "<unknown>");
        return;
    }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        char buf[4];
        size_t len;
        if (ch < 0x80) {
            buf[0] = (char)ch;
            len = 1;
        } else if (ch < 0x800) {
            buf[0] = (char)(0xC0 | (ch >> 6));
            buf[1] = (char)(0x80 | (ch & 0x3F));
            len = 2;
        } else if (ch < 0x10000) {
            if (ch >= 0xD800 && ch <= 0xDFFF) {
                ch = 0xFFFD; /* A lone surrogate has no UTF-8 form. */
            }
            buf[0] = (char)(0xE0 | (ch >> 12));
            buf[1] = (char)(0x80 | ((ch >> 6) & 0x3F));
            buf[2] = (char)(0x80 | (ch & 0x3F));
            len = 3;
        } else {
            buf[0] = (char)(0xF0 | (ch >> 18));
            buf[1] = (char)(0x80 | ((ch >> 12) & 0x3F));
            buf[2] = (char)(0x80 | ((ch >> 6) & 0x3F));
            buf[3] = (char)(0x80 | (ch & 0x3F));
            len = 4;
        }
        if (o + len >= cap) {
            break;
        }
        memcpy(out + o, buf, len);
        o += len;
    }
    out[o] = '\0';
}

int mh_pyframes_describe(uintptr_t code, int32_t instr, char *file, size_t file_cap,
                         char *function, size_t function_cap, int *lineno)
{
    PyCodeObject *co = (PyCodeObject *)code;
    if (co == NULL) {
        return -1;
    }
    if (code == MH_CODE_SUBINTERP) {
        snprintf(file, file_cap, "%s", MH_SUBINTERP_NAME);
        snprintf(function, function_cap, "%s", MH_SUBINTERP_NAME);
        *lineno = 0;
        return 0;
    }
    /* PyCode_Addr2Line only reads the immutable line table. */
    *lineno = line_of(co, instr);
    utf8_copy(co->co_filename, file, file_cap);
#if PY_VERSION_HEX >= 0x030B0000
    utf8_copy(co->co_qualname, function, function_cap);
#else
    utf8_copy(co->co_name, function, function_cap);
#endif
    return 0;
}
