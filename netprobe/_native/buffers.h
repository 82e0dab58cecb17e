/* Typed access to numpy arrays through the buffer protocol (no numpy headers).
 *
 * Owns: getting a C-contiguous buffer of a given item size from an object or
 * from a dict of columns, checking its length, and releasing it.
 * Must not: allocate arrays (Python allocates; C fills).
 */
#ifndef NETPROBE_NATIVE_BUFFERS_H
#define NETPROBE_NATIVE_BUFFERS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_buffer view;
    int held;
} np_buf;

/* Get `obj` as a C-contiguous buffer whose items are `itemsize` bytes and,
 * when n >= 0, exactly n items long. Sets a Python exception and returns -1
 * on failure. */
static int np_get(PyObject *obj, np_buf *b, Py_ssize_t itemsize, Py_ssize_t n,
                  int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    b->held = 0;
    if (PyObject_GetBuffer(obj, &b->view, flags) < 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a contiguous%s array", what,
                     writable ? " writable" : "");
        return -1;
    }
    b->held = 1;
    if (b->view.itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: expected items of %zd bytes, got %zd", what,
                     itemsize, b->view.itemsize);
        return -1;
    }
    if (n >= 0 && b->view.len / itemsize != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd items, got %zd", what, n,
                     b->view.len / itemsize);
        return -1;
    }
    return 0;
}

/* The column `name` of the dict `cols` (see np_get). */
static int np_get_col(PyObject *cols, const char *name, np_buf *b, Py_ssize_t itemsize,
                      Py_ssize_t n, int writable)
{
    PyObject *obj = PyDict_GetItemString(cols, name); /* borrowed */
    b->held = 0;
    if (obj == NULL) {
        PyErr_Format(PyExc_KeyError, "column %s is missing", name);
        return -1;
    }
    return np_get(obj, b, itemsize, n, writable, name);
}

static void np_release(np_buf *b)
{
    if (b->held) {
        PyBuffer_Release(&b->view);
        b->held = 0;
    }
}

#define NP_PTR(b, type) ((type *)(b).view.buf)
#define NP_LEN(b) ((b).view.len / (b).view.itemsize)

#endif
