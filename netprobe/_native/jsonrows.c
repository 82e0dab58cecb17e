/* netprobe._native.jsonrows: JSON objects, one per row, from columns.
 *
 * Owns: laying out `{"key":value,...}` per row, the rows joined by commas, from
 * int64 arrays (written in decimal, negative values as null where asked),
 * orjson's dump of a numeric array, or Python objects encoded by a callable
 * (orjson.dumps), strings and None once per distinct value thanks to a cache
 * that the caller keeps from call to call. Mirrors
 * netprobe.present.flowjson._join_rows byte for byte.
 * Must not: escape strings or format floats (the callable and orjson do), nor
 * choose keys, order or null rules.
 */
#include "buffers.h"

enum { INT = 0, OBJECTS = 1, NUMBERS = 2 };
#define INT_CHARS 20 /* "-9223372036854775808" */

typedef struct {
    const char *key; /* `"name":` */
    Py_ssize_t key_len;
    int kind;
    int null_negative;     /* INT: a negative value is written null */
    np_buf ints;           /* INT: n int64 */
    PyObject *tokens;      /* OBJECTS: a list of n bytes, the JSON of each object (owned) */
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

/* The JSON of one object: from `cache` when it is a str or None (encoded once, then
 * kept there), else from `encode` every time (in a dict, 1, 1.0 and True would be
 * one key). A new reference, or NULL with an exception. */
static PyObject *encode_one(PyObject *item, PyObject *cache, PyObject *encode)
{
    int cached = PyUnicode_Check(item) || item == Py_None;
    PyObject *token = cached ? PyDict_GetItemWithError(cache, item) : NULL;
    if (token != NULL)
        return Py_NewRef(token);
    if (PyErr_Occurred())
        return NULL;
    Py_INCREF(item); /* encode may run any code */
    token = PyObject_CallOneArg(encode, item);
    if (token != NULL && !PyBytes_Check(token)) {
        PyErr_SetString(PyExc_TypeError, "object column: encode must return bytes");
        Py_CLEAR(token);
    }
    if (token != NULL && cached && PyDict_SetItem(cache, item, token) < 0)
        Py_CLEAR(token);
    Py_DECREF(item);
    return token;
}

/* `(objects, cache, encode)` (a list of n objects, a dict, a callable) to a new list of
 * n bytes, the JSON of each object. */
static PyObject *encode_objects(PyObject *data, Py_ssize_t n)
{
    PyObject *objects, *cache, *encode;
    if (!PyTuple_Check(data))
        return PyErr_Format(PyExc_TypeError, "object column: expected (objects, cache, encode)");
    if (!PyArg_ParseTuple(data, "O!O!O", &PyList_Type, &objects, &PyDict_Type, &cache, &encode))
        return NULL;
    if (PyList_GET_SIZE(objects) != n)
        return PyErr_Format(PyExc_ValueError, "object column: expected %zd objects", n);
    PyObject *tokens = PyList_New(n);
    for (Py_ssize_t i = 0; tokens != NULL && i < n; i++) {
        PyObject *token = i < PyList_GET_SIZE(objects)  /* encode may shorten the list */
            ? encode_one(PyList_GET_ITEM(objects, i), cache, encode)
            : PyErr_Format(PyExc_ValueError, "object column: the list changed");
        if (token == NULL)
            Py_CLEAR(tokens);
        else
            PyList_SET_ITEM(tokens, i, token);
    }
    return tokens;
}

/* Read one `(key, kind, data, null_negative)` tuple into `c`; adds to `*size` the
 * most its values can take. Sets an exception and returns -1 when `data` does not
 * hold exactly n values of its kind. */
static int get_column(PyObject *spec, column *c, Py_ssize_t n, Py_ssize_t *size)
{
    PyObject *data;
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "columns: expected (key, kind, data, null_negative)");
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "y#iOp", &c->key, &c->key_len, &c->kind, &data,
                          &c->null_negative))
        return -1;
    *size += c->key_len * n;
    if (c->kind == INT) {
        *size += INT_CHARS * n; /* at most: the bytes are cut to size at the end */
        return np_get(data, &c->ints, 8, n, 0, "int column");
    }
    if (c->kind == OBJECTS) {
        if ((c->tokens = encode_objects(data, n)) == NULL)
            return -1;
        for (Py_ssize_t i = 0; i < n; i++)
            *size += PyBytes_GET_SIZE(PyList_GET_ITEM(c->tokens, i));
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
            } else if (c->kind == OBJECTS) {
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
"kind 1: data is (objects, cache, encode), a list of n objects, a dict and a\n"
"callable giving the JSON bytes of an object; the JSON of a str or None is\n"
"taken from the cache, or encoded and added to it; kind 2: data is bytes, n\n"
"JSON numbers (or null) joined by commas. Raises ValueError or TypeError when\n"
"a column does not hold n values of its kind; what encode raises.");

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
    for (Py_ssize_t j = 0; cols != NULL && j < ncols; j++) {
        np_release(&cols[j].ints);
        Py_XDECREF(cols[j].tokens);
    }
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
