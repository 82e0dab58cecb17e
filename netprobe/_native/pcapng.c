/* netprobe._native.pcapng: the pcapng block walk between two special blocks.
 *
 * Owns: stepping over the blocks of one section from one offset, recording
 * the packet blocks (EPB, SPB, obsolete PB) and skipping the blocks nobody
 * reads. Mirrors the loop of netprobe.capture.pcapng._Walker.walk and stops,
 * leaving the block to Python, at a section header, an interface
 * description, a block whose length is impossible, or a block that does not
 * end inside the buffer.
 * Must not: read block bodies beyond their fixed fields.
 */
#include "buffers.h"

#define SHB 0x0A0D0D0Au
#define IDB 1u
#define OPB 2u
#define SPB 3u
#define EPB 6u
#define MAX_BLOCK (16u * 1024u * 1024u + 4096u)
#define BLOCK_WORDS 7 /* type, length and the packet block's fixed fields */
#define PREFETCH_AHEAD 4096

static inline uint32_t load32(const uint8_t *p, int big)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return big ? __builtin_bswap32(v) : v;
}

/* The first BLOCK_WORDS words of the block at `off`; words past `end` read as 0. */
static void block_words(const uint8_t *data, Py_ssize_t off, Py_ssize_t end, int big,
                        int64_t *words)
{
    for (int w = 0; w < BLOCK_WORDS; w++)
        words[w] = off + 4 * w + 4 <= end ? (int64_t)load32(data + off + 4 * w, big) : 0;
}

static Py_ssize_t scan_blocks(const uint8_t *data, Py_ssize_t off, Py_ssize_t end, int big,
                              int64_t tag, int64_t *offsets, int64_t *kinds, int64_t *words,
                              Py_ssize_t cap, Py_ssize_t *stop)
{
    Py_ssize_t n = 0;
    while (off + 12 <= end && n < cap) {
        /* blocks follow each other: fetch ahead to hide the memory latency */
        if (off + PREFETCH_AHEAD < end)
            __builtin_prefetch(data + off + PREFETCH_AHEAD);
        uint32_t btype = load32(data + off, big), blen = load32(data + off + 4, big);
        if (btype == SHB || btype == IDB || blen < 12 || blen % 4 || blen > MAX_BLOCK
            || off + (Py_ssize_t)blen > end)
            break;
        if (btype == EPB || btype == SPB || btype == OPB) {
            offsets[n] = off;
            kinds[n] = (int64_t)btype | tag;
            block_words(data, off, end, big, words + BLOCK_WORDS * n);
            n++;
        }
        off += blen;
    }
    *stop = off;
    return n;
}

PyDoc_STRVAR(scan_doc,
"scan(data, start, end, big, tag, offsets, kinds, words) -> (count, stop)\n\n"
"Walk the blocks of data[start:end] in one section's byte order, writing the\n"
"offset and `type | tag` of each packet block into offsets/kinds (int64,\n"
"room for (end - start) // 12 + 1 entries) and its first 7 words, in that\n"
"byte order, into words (int64, 7 per entry; words past `end` are 0).\n"
"Stops where Python must look:\n"
"a section header, an interface description, an impossible length, a block\n"
"running past `end`, or fewer than 12 bytes left.");

static PyObject *scan(PyObject *self, PyObject *args)
{
    PyObject *data_obj, *off_obj, *kind_obj, *word_obj, *result = NULL;
    Py_ssize_t start, end, n = 0, stop = 0;
    int big;
    long long tag;
    np_buf data, offsets, kinds, words;
    (void)self;
    data.held = offsets.held = kinds.held = words.held = 0;
    if (!PyArg_ParseTuple(args, "OnnpLOOO", &data_obj, &start, &end, &big, &tag, &off_obj,
                          &kind_obj, &word_obj))
        return NULL;
    if (np_get(data_obj, &data, 1, -1, 0, "data") < 0
        || np_get(off_obj, &offsets, 8, -1, 1, "offsets") < 0
        || np_get(kind_obj, &kinds, 8, -1, 1, "kinds") < 0
        || np_get(word_obj, &words, 8, -1, 1, "words") < 0)
        goto done;
    if (start < 0 || end < start || end > data.view.len) {
        PyErr_SetString(PyExc_ValueError, "start/end outside the data");
        goto done;
    }
    Py_ssize_t cap = NP_LEN(offsets) < NP_LEN(kinds) ? NP_LEN(offsets) : NP_LEN(kinds);
    if (NP_LEN(words) / BLOCK_WORDS < cap)
        cap = NP_LEN(words) / BLOCK_WORDS;
    if (cap < (end - start) / 12 + 1) {
        PyErr_SetString(PyExc_ValueError,
                        "offsets/kinds/words need room for (end - start) // 12 + 1 blocks");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    n = scan_blocks(NP_PTR(data, uint8_t), start, end, big, (int64_t)tag,
                    NP_PTR(offsets, int64_t), NP_PTR(kinds, int64_t), NP_PTR(words, int64_t),
                    cap, &stop);
    Py_END_ALLOW_THREADS
    result = Py_BuildValue("nn", n, stop);
done:
    np_release(&data);
    np_release(&offsets);
    np_release(&kinds);
    np_release(&words);
    return result;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, scan_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.pcapng",
    "pcapng block walk (mirrors the loop of netprobe.capture.pcapng._Walker.walk).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_pcapng(void) { return PyModule_Create(&module); }
