/* netprobe._native.pcap: the classic-pcap record walk.
 *
 * Owns: finding where each record of a chunk starts and reading its four
 * header words. Mirrors netprobe.capture.pcap._walk_records + _headers: the
 * walk is serial (each record's length says where the next starts), which
 * is the one per-record loop of the reader.
 * Must not: judge lengths (Python checks them against the snap length).
 */
#include "buffers.h"

#define PREFETCH_AHEAD 4096

static inline uint32_t load32(const uint8_t *p, int big)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return big ? __builtin_bswap32(v) : v;
}

/* Offsets of the records of data[:size] (plus the start of an incomplete last
 * record whose header is whole), their header words, and where the complete
 * records end. Returns the number of offsets written. */
static Py_ssize_t walk_records(const uint8_t *data, Py_ssize_t size, int big, int64_t *offsets,
                               uint32_t *heads, Py_ssize_t cap, Py_ssize_t *end)
{
    Py_ssize_t n = 0, off = 0;
    while (off + 16 <= size && n < cap) {
        const uint8_t *p = data + off;
        /* The next header's address depends on this one's length, so the loads
         * cannot overlap by themselves; records are laid out one after the
         * other, so fetching the bytes ahead hides the memory latency. */
        if (off + PREFETCH_AHEAD < size)
            __builtin_prefetch(p + PREFETCH_AHEAD);
        offsets[n] = off;
        for (int w = 0; w < 4; w++)
            heads[4 * n + w] = load32(p + 4 * w, big);
        n++;
        off += 16 + (Py_ssize_t)heads[4 * (n - 1) + 2];
    }
    if (off > size) { /* the last record is not complete: it ends the walk */
        *end = offsets[n - 1];
        return n;
    }
    *end = off;
    return n;
}

PyDoc_STRVAR(walk_doc,
"walk(data, size, big, offsets, heads) -> (count, end)\n\n"
"Walk the pcap records of data[:size]. Fills offsets (int64) and heads\n"
"(uint32, 4 words per record: seconds, fraction, caplen, origlen) and returns\n"
"how many were written and where the complete records end. When the last\n"
"record is incomplete but its header is whole, it is the last one written\n"
"and `end` is its offset.");

static PyObject *walk(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *off_obj, *head_obj;
    Py_ssize_t size, n = 0, end = 0;
    int big;
    np_buf data, offsets, heads;
    PyObject *result = NULL;
    (void)self;
    data.held = offsets.held = heads.held = 0;
    if (!PyArg_ParseTuple(args, "OnpOO", &data_obj, &size, &big, &off_obj, &head_obj))
        return NULL;
    if (np_get(data_obj, &data, 1, -1, 0, "data") < 0
        || np_get(off_obj, &offsets, 8, -1, 1, "offsets") < 0
        || np_get(head_obj, &heads, 4, -1, 1, "heads") < 0)
        goto done;
    if (size < 0 || size > data.view.len) {
        PyErr_SetString(PyExc_ValueError, "size outside the data");
        goto done;
    }
    Py_ssize_t cap = NP_LEN(offsets);
    if (NP_LEN(heads) / 4 < cap)
        cap = NP_LEN(heads) / 4;
    if (cap < size / 16 + 1) {
        PyErr_SetString(PyExc_ValueError, "offsets/heads need room for size // 16 + 1 records");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    n = walk_records(NP_PTR(data, uint8_t), size, big, NP_PTR(offsets, int64_t),
                     NP_PTR(heads, uint32_t), cap, &end);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", n, end);
done:
    np_release(&data);
    np_release(&offsets);
    np_release(&heads);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, walk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.pcap",
    "Classic-pcap record walk (mirrors netprobe.capture.pcap._walk_records).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_pcap(void) { return PyModule_Create(&module); }
