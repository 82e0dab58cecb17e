/* netprobe._native.jsonrows: JSON objects, one per row, from columns.
 *
 * Owns: laying out `{"key":value,...}` per row, the rows joined by commas, from
 * columns whose values are already JSON text (tokens, or orjson's dump of a
 * numeric array) or int64 arrays (written in decimal, negative values as null
 * where asked). Mirrors netprobe.present.flowjson._join_rows byte for byte.
 * Must not: escape strings or format floats (orjson does, in Python, once per
 * distinct value or per column), nor choose keys, order or null rules.
 */
#include "buffers.h"

enum { INT = 0, TOKENS = 1, NUMBERS = 2 };
#define INT_CHARS 20 /* "-9223372036854775808" */

typedef struct {
    const char *key; /* `"name":` */
    Py_ssize_t key_len;
    int kind;
    int null_negative;     /* INT: a negative value is written null */
    np_buf ints;           /* INT: n int64 */
    PyObject *tokens;      /* TOKENS: a list of n bytes (borrowed from `data`) */
    const char *text;      /* NUMBERS: n tokens joined by commas */
    Py_ssize_t text_len;
} column;

static char *write_int(char *out, int64_t v, int null_negative)
{
    if (v >= 0 && v < 10) { /* most counts */
        *out++ = (char)('0' + v);
        return out;
    }
    if (v < 0 && null_negative) {
        memcpy(out, "null", 4);
        return out + 4;
    }
    char digits[INT_CHARS];
    int k = 0;
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        digits[k++] = (char)('0' + m % 10);
        m /= 10;
    } while (m);
    if (v < 0)
        *out++ = '-';
    while (k)
        *out++ = digits[--k];
    return out;
}

/* Read one `(key, kind, data, null_negative)` tuple into `c`; adds to `*size` the
 * most its values can take. Sets an exception and returns -1 when `data` does not
 * hold exactly n values of its kind. */
static int get_column(PyObject *spec, column *c, Py_ssize_t n, Py_ssize_t *size)
{
    PyObject *data;
    if (!PyArg_ParseTuple(spec, "y#iOp", &c->key, &c->key_len, &c->kind, &data,
                          &c->null_negative))
        return -1;
    *size += c->key_len * n;
    if (c->kind == INT) {
        *size += INT_CHARS * n; /* at most: the bytes are cut to size at the end */
        return np_get(data, &c->ints, 8, n, 0, "int column");
    }
    if (c->kind == TOKENS) {
        if (!PyList_Check(data) || PyList_GET_SIZE(data) != n) {
            PyErr_Format(PyExc_ValueError, "token column: expected a list of %zd bytes", n);
            return -1;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *token = PyList_GET_ITEM(data, i);
            if (!PyBytes_Check(token)) {
                PyErr_SetString(PyExc_TypeError, "token column: expected bytes tokens");
                return -1;
            }
            *size += PyBytes_GET_SIZE(token);
        }
        c->tokens = data;
        return 0;
    }
    if (c->kind == NUMBERS) {
        if (!PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "number column: expected bytes");
            return -1;
        }
        c->text = PyBytes_AS_STRING(data);
        c->text_len = PyBytes_GET_SIZE(data);
        Py_ssize_t commas = 0;
        for (const char *p = c->text, *end = p + c->text_len;
             (p = memchr(p, ',', (size_t)(end - p))) != NULL; p++)
            commas++;
        if ((n == 0 && c->text_len != 0) || (n > 0 && commas != n - 1)) {
            PyErr_Format(PyExc_ValueError, "number column: expected %zd values", n);
            return -1;
        }
        *size += c->text_len - commas;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "unknown column kind %d", c->kind);
    return -1;
}

/* Write row after row into `out` (at most the size get_column counted). */
static char *write_rows(char *out, column *cols, Py_ssize_t ncols, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i)
            *out++ = ',';
        *out++ = '{';
        for (Py_ssize_t j = 0; j < ncols; j++) {
            column *c = &cols[j];
            if (j)
                *out++ = ',';
            memcpy(out, c->key, (size_t)c->key_len);
            out += c->key_len;
            if (c->kind == INT) {
                out = write_int(out, NP_PTR(c->ints, int64_t)[i], c->null_negative);
            } else if (c->kind == TOKENS) {
                PyObject *token = PyList_GET_ITEM(c->tokens, i);
                memcpy(out, PyBytes_AS_STRING(token), (size_t)PyBytes_GET_SIZE(token));
                out += PyBytes_GET_SIZE(token);
            } else {
                const char *end = c->text + c->text_len;
                const char *comma = memchr(c->text, ',', (size_t)(end - c->text));
                Py_ssize_t len = (comma ? comma : end) - c->text;
                memcpy(out, c->text, (size_t)len);
                out += len;
                c->text += len + (comma != NULL);
                c->text_len = end - c->text;
            }
        }
        *out++ = '}';
    }
    return out;
}

PyDoc_STRVAR(rows_doc,
"rows(columns, n) -> bytes\n\n"
"n JSON objects joined by commas, without brackets. `columns` is a list of\n"
"(key, kind, data, null_negative): key is the bytes `\"name\":`; kind 0: data\n"
"holds n int64 (written in decimal, null when negative and null_negative);\n"
"kind 1: data is a list of n bytes, each one JSON value; kind 2: data is bytes,\n"
"n JSON numbers (or null) joined by commas. Raises ValueError or TypeError when\n"
"a column does not hold n values of its kind.");

static PyObject *rows(PyObject *self, PyObject *args)
{
    PyObject *spec, *fast = NULL, *result = NULL;
    Py_ssize_t n, ncols = 0, size = 0;
    column *cols = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "On", &spec, &n))
        return NULL;
    if (n < 0)
        return PyErr_Format(PyExc_ValueError, "n must not be negative");
    if ((fast = PySequence_Fast(spec, "columns: expected a list")) == NULL)
        return NULL;
    ncols = PySequence_Fast_GET_SIZE(fast);
    if ((cols = PyMem_Calloc((size_t)(ncols ? ncols : 1), sizeof *cols)) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    size = n ? n * (2 + (ncols ? ncols - 1 : 0)) + n - 1 : 0; /* braces and commas */
    for (Py_ssize_t j = 0; j < ncols; j++)
        if (get_column(PySequence_Fast_GET_ITEM(fast, j), &cols[j], n, &size) < 0)
            goto done;
    if ((result = PyBytes_FromStringAndSize(NULL, size)) == NULL)
        goto done;
    char *start = PyBytes_AS_STRING(result);
    _PyBytes_Resize(&result, write_rows(start, cols, ncols, n) - start); /* NULL if it fails */
done:
    for (Py_ssize_t j = 0; cols != NULL && j < ncols; j++)
        np_release(&cols[j].ints);
    PyMem_Free(cols);
    Py_DECREF(fast);
    return result;
}

static PyMethodDef methods[] = {
    {"rows", rows, METH_VARARGS, rows_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.jsonrows",
    "JSON objects from columns (mirrors netprobe.present.flowjson._join_rows).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_jsonrows(void) { return PyModule_Create(&module); }
