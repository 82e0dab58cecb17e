/* netprobe._native.tcp: TCP streams, client direction and retransmission marks.
 *
 * Owns: per TCP packet, its stream number (in order of first appearance),
 * whether the stream's client sent it and whether Wireshark marks it
 * tcp.analysis.retransmission. Mirrors netprobe.analysis.tcp.analyse (the
 * numpy reference sorts by conversation and scans each stream; here each
 * conversation keeps the state of its current stream and the packets are
 * visited in frame order, which gives the same per-stream sequences):
 *   pass 1: the conversation of each packet, in an open-addressing table with
 *           exact keys (numpy keys by a 64-bit hash; its collisions, about
 *           n^2 / 2^65, are negligible), and whether the conversation is
 *           'busy' (numpy _streams: a SYN that is not a repeat of its opening);
 *   pass 2: stream splits (_streams, _base_seq) and retransmissions
 *           (_one_direction, _first_rtt, _reverse_last_ack);
 *   pass 3: from_client (_client_side), once each stream's first SYN is known.
 * Must not: allocate the outputs (Python does) or hold the GIL in the passes.
 */
#include "buffers.h"

#define F_FIN 0x01
#define F_SYN 0x02
#define F_RST 0x04
#define F_ACK 0x10
#define OOO_DEFAULT 0.003 /* tcp.OOO_DEFAULT: Wireshark's threshold before an RTT is known */

#define ERR_MEMORY (-1)
#define ERR_OVERLAP (-2)

typedef struct {
    Py_ssize_t n;
    const uint8_t *tcp;
    const uint64_t *src_hi, *src_lo, *dst_hi, *dst_lo;
    const int32_t *sport, *dport, *seglen;
    const uint16_t *flags;
    const uint32_t *seq, *ack;
    const double *time;
    int64_t *stream;      /* out; pass 1 keeps the conversation of each packet here */
    uint8_t *from_client; /* out; pass 1 keeps the direction (numpy `swap`) here */
    uint8_t *retrans;     /* out */
} columns;

/* ---- pass 1: conversations ---- */

typedef struct { /* the unordered endpoint pair: lower endpoint, then higher */
    uint64_t lo_hi, lo_lo, hi_hi, hi_lo;
    int32_t lo_port, hi_port;
} conv_key;

typedef struct {
    conv_key key;
    uint32_t head_seq;          /* the conversation's first packet: seq, */
    uint8_t head_syn, head_swap; /* SYN without ACK, direction */
    uint8_t busy;               /* has a SYN that does not repeat the opening one */
} conversation;

typedef struct {
    uint32_t conv1; /* conversation + 1; 0 = empty */
    uint32_t tag;   /* low bits of the hash: most mismatches never read the key */
} slot;

typedef struct {
    slot *slots;
    size_t mask;
    int shift; /* the slot of hash h is h >> shift */
    conversation *convs;
    size_t count, cap;
} conv_table;

static inline int is_syn(uint16_t f) { return (f & (F_SYN | F_ACK)) == F_SYN; }

/* numpy `swap`: the source endpoint sorts after the destination (hi, lo, port). */
static inline int source_higher(const columns *c, Py_ssize_t i)
{
    if (c->src_hi[i] != c->dst_hi[i])
        return c->src_hi[i] > c->dst_hi[i];
    if (c->src_lo[i] != c->dst_lo[i])
        return c->src_lo[i] > c->dst_lo[i];
    return c->sport[i] > c->dport[i];
}

static conv_key make_key(const columns *c, Py_ssize_t i, int swap)
{
    conv_key k;
    if (swap) {
        k.lo_hi = c->dst_hi[i], k.lo_lo = c->dst_lo[i], k.lo_port = c->dport[i];
        k.hi_hi = c->src_hi[i], k.hi_lo = c->src_lo[i], k.hi_port = c->sport[i];
    } else {
        k.lo_hi = c->src_hi[i], k.lo_lo = c->src_lo[i], k.lo_port = c->sport[i];
        k.hi_hi = c->dst_hi[i], k.hi_lo = c->dst_lo[i], k.hi_port = c->dport[i];
    }
    return k;
}

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 29);
}

static uint64_t key_hash(const conv_key *k)
{
    uint64_t h = 0x243F6A8885A308D3ull;
    h = mix(h, k->lo_hi);
    h = mix(h, k->lo_lo);
    h = mix(h, k->hi_hi);
    h = mix(h, k->hi_lo);
    return mix(h, ((uint64_t)(uint32_t)k->lo_port << 32) | (uint32_t)k->hi_port);
}

static inline int key_eq(const conv_key *a, const conv_key *b)
{
    return a->lo_hi == b->lo_hi && a->lo_lo == b->lo_lo && a->hi_hi == b->hi_hi
        && a->hi_lo == b->hi_lo && a->lo_port == b->lo_port && a->hi_port == b->hi_port;
}

/* Slots and conversations; both grow with the conversations found. */
static int table_init(conv_table *t)
{
    t->slots = PyMem_RawCalloc(1024, sizeof(slot));
    t->mask = 1023;
    t->shift = 64 - 10;
    t->count = 0;
    t->cap = 1024;
    t->convs = PyMem_RawMalloc(t->cap * sizeof(conversation));
    return t->slots && t->convs ? 0 : ERR_MEMORY;
}

static size_t free_slot(const conv_table *t, uint64_t h)
{
    size_t at = (size_t)(h >> t->shift);
    while (t->slots[at].conv1 != 0)
        at = (at + 1) & t->mask;
    return at;
}

/* Twice the slots, so that they stay at most half full. */
static int table_rehash(conv_table *t)
{
    slot *old = t->slots;
    size_t size = 2 * (t->mask + 1);
    t->slots = PyMem_RawCalloc(size, sizeof(slot));
    if (t->slots == NULL) {
        t->slots = old;
        return ERR_MEMORY;
    }
    PyMem_RawFree(old);
    t->mask = size - 1;
    t->shift--;
    for (size_t j = 0; j < t->count; j++) {
        uint64_t h = key_hash(&t->convs[j].key);
        size_t at = free_slot(t, h);
        t->slots[at].conv1 = (uint32_t)(j + 1);
        t->slots[at].tag = (uint32_t)h;
    }
    return 0;
}

static void table_free(conv_table *t)
{
    PyMem_RawFree(t->slots);
    PyMem_RawFree(t->convs);
    t->slots = NULL;
    t->convs = NULL;
}

static int table_grow(conv_table *t)
{
    conversation *bigger = PyMem_RawRealloc(t->convs, 2 * t->cap * sizeof(conversation));
    if (bigger == NULL)
        return ERR_MEMORY;
    t->convs = bigger;
    t->cap *= 2;
    return 0;
}

/* The conversation of `k` (added, with *added set, when new); -1 when memory
 * runs out. The slots are at most half full, so a free one exists. */
static int64_t table_find(conv_table *t, const conv_key *k, int *added)
{
    uint64_t h = key_hash(k);
    uint32_t tag = (uint32_t)h;
    size_t at = (size_t)(h >> t->shift);
    for (;; at = (at + 1) & t->mask) {
        slot *s = &t->slots[at];
        if (s->conv1 == 0)
            break;
        if (s->tag == tag && key_eq(&t->convs[s->conv1 - 1].key, k)) {
            *added = 0;
            return s->conv1 - 1;
        }
    }
    if (t->count == t->cap && table_grow(t) < 0)
        return -1;
    t->convs[t->count].key = *k;
    t->slots[at].conv1 = (uint32_t)(t->count + 1);
    t->slots[at].tag = tag;
    *added = 1;
    t->count++;
    if (2 * t->count > t->mask + 1 && table_rehash(t) < 0)
        return -1;
    return (int64_t)t->count - 1;
}

static int find_conversations(const columns *c, conv_table *t)
{
    for (Py_ssize_t i = 0; i < c->n; i++) {
        if (!c->tcp[i])
            continue;
        int swap = source_higher(c, i), added;
        conv_key k = make_key(c, i, swap);
        int64_t v = table_find(t, &k, &added);
        if (v < 0)
            return ERR_MEMORY;
        conversation *cv = &t->convs[v];
        int syn = is_syn(c->flags[i]);
        if (added) {
            cv->head_seq = c->seq[i];
            cv->head_syn = (uint8_t)syn;
            cv->head_swap = (uint8_t)swap;
            cv->busy = 0;
        } else if (syn && !(cv->head_syn && cv->head_swap == swap && cv->head_seq == c->seq[i])) {
            cv->busy = 1;
        }
        c->stream[i] = v;
        c->from_client[i] = (uint8_t)swap;
    }
    return 0;
}

/* ---- pass 2: streams and retransmissions ---- */

typedef struct {
    /* every packet of the direction (numpy _base_seq) */
    uint32_t base;
    uint8_t base_known;
    /* packets with seglen >= 0 only (numpy _one_direction, _reverse_last_ack) */
    uint8_t seen;
    uint32_t seq, ack;  /* of the last packet */
    int64_t useq;       /* its unwrapped seq (numpy _unwrap) */
    int64_t next;       /* highest nextseq so far */
    double next_time;   /* time of the packet that last raised `next` */
} direction;

typedef struct { /* the current stream of one conversation */
    direction dir[2];  /* by numpy `swap` */
    double syn_time;   /* last SYN without ACK (numpy _first_rtt) */
    double rtt;        /* the initial RTT, once known */
    int64_t stream;
    uint8_t started, have_syn, rtt_known;
} current;

/* numpy _streams: in a busy conversation, a SYN without ACK whose seq is not
 * the base seq known for its direction starts a new stream. */
static int splits(const current *s, const conversation *cv, int d, uint16_t f, uint32_t seq)
{
    return cv->busy && is_syn(f) && s->dir[d].base_known && s->dir[d].base != seq;
}

/* numpy _base_seq: the first packet of the direction, or the first ACK of the other. */
static void learn_base(current *s, int d, uint16_t f, uint32_t seq, uint32_t ack)
{
    direction *fwd = &s->dir[d], *rev = &s->dir[!d];
    if (!fwd->base_known) {
        fwd->base_known = 1;
        fwd->base = (f & F_SYN) ? seq : seq - 1u;
    }
    if ((f & F_ACK) && !rev->base_known) {
        rev->base_known = 1;
        rev->base = ack - 1u;
    }
}

/* numpy _first_rtt: the threshold of this packet, then what it teaches. */
static double ooo_threshold(current *s, uint16_t f, double t)
{
    double thres = s->rtt_known ? s->rtt : OOO_DEFAULT;
    if (!s->rtt_known && s->have_syn && (f & (F_SYN | F_ACK)) == F_ACK) {
        s->rtt = t - s->syn_time;
        s->rtt_known = 1;
    }
    if (is_syn(f)) {
        s->have_syn = 1;
        s->syn_time = t;
    }
    return thres;
}

/* The signed distance from `prev` to `seq` modulo 2^32, in [-2^31, 2^31). */
static inline int64_t seq_step(uint32_t seq, uint32_t prev)
{
    int64_t d = (int64_t)(uint32_t)(seq - prev);
    return d >= 0x80000000ll ? d - 0x100000000ll : d;
}

/* numpy _one_direction for one packet with seglen `len` >= 0. */
static int retransmitted(current *s, int d, uint16_t f, uint32_t seq, uint32_t ack,
                         int32_t len, double t)
{
    direction *me = &s->dir[d];
    const direction *other = &s->dir[!d];
    double thres = ooo_threshold(s, f, t);
    int64_t synfin = (f & (F_SYN | F_FIN)) != 0;
    int is_set = me->seen;
    int64_t useq = is_set ? me->useq + seq_step(seq, me->seq) : (int64_t)seq;
    int64_t nxt = useq + len + synfin;
    int mark = 0;
    if (len > 0 || synfin) {
        int not_adv = is_set && useq < me->next;
        int at_last = is_set && useq == me->next - 1;
        int keepalive = at_last && len <= 1 && !(f & (F_SYN | F_FIN | F_RST));
        if (len > 1 && at_last)
            not_adv = 0;
        int ooo = not_adv && (t - me->next_time) < thres && me->next != nxt;
        /* spurious: all data at or below the last ACK the other direction sent */
        uint32_t rev_ack = other->seen ? other->ack : 0;
        uint32_t end = seq + (uint32_t)len;
        int spurious = len > 0 && rev_ack > 0 && (uint32_t)(rev_ack - end) < 0x80000000u;
        mark = !keepalive && (spurious || (not_adv && !ooo));
    }
    if (!is_set || nxt > me->next) {
        me->next = nxt;
        me->next_time = t;
    }
    me->seen = 1;
    me->seq = seq;
    me->ack = ack;
    me->useq = useq;
    return mark;
}

/* Streams (into c->stream), retransmissions, and per stream the direction of
 * its client: bit 0 = `swap` of its first SYN (else first packet), bit 1 = SYN seen. */
static int walk_streams(const columns *c, const conversation *convs, size_t nconv,
                        current *cur, uint8_t *client, int64_t *nstreams)
{
    int64_t streams = 0;
    for (Py_ssize_t i = 0; i < c->n; i++) {
        if (!c->tcp[i]) {
            c->stream[i] = -1;
            c->from_client[i] = 0;
            c->retrans[i] = 0;
            continue;
        }
        int64_t v = c->stream[i];
        if (v < 0 || (uint64_t)v >= nconv) /* only if an output aliases an input */
            return ERR_OVERLAP;
        int d = c->from_client[i] != 0;
        uint16_t f = c->flags[i];
        uint32_t seq = c->seq[i], ack = c->ack[i];
        current *s = &cur[v];
        if (!s->started || splits(s, &convs[v], d, f, seq)) {
            memset(s, 0, sizeof *s);
            s->started = 1;
            s->stream = streams++;
            client[s->stream] = (uint8_t)d;
        }
        learn_base(s, d, f, seq, ack);
        if (is_syn(f) && !(client[s->stream] & 2))
            client[s->stream] = (uint8_t)(d | 2);
        int32_t len = c->seglen[i];
        c->retrans[i] = len >= 0 && retransmitted(s, d, f, seq, ack, len, c->time[i]);
        c->stream[i] = s->stream;
    }
    *nstreams = streams;
    return 0;
}

/* ---- pass 3: from_client ---- */

static int mark_clients(const columns *c, const uint8_t *client, int64_t nstreams)
{
    for (Py_ssize_t i = 0; i < c->n; i++) {
        if (!c->tcp[i])
            continue;
        int64_t s = c->stream[i];
        if (s < 0 || s >= nstreams)
            return ERR_OVERLAP;
        c->from_client[i] = (c->from_client[i] != 0) == (client[s] & 1);
    }
    return 0;
}

static int run(const columns *c)
{
    size_t ntcp = 0;
    for (Py_ssize_t i = 0; i < c->n; i++)
        ntcp += c->tcp[i] != 0;
    conv_table t = {0};
    current *cur = NULL;
    uint8_t *client = NULL;
    int64_t nstreams = 0;
    int rc = table_init(&t);
    if (rc == 0)
        rc = find_conversations(c, &t);
    PyMem_RawFree(t.slots); /* pass 2 needs only the conversations */
    t.slots = NULL;
    if (rc == 0) {
        cur = PyMem_RawCalloc(t.count ? t.count : 1, sizeof(current));
        client = PyMem_RawMalloc(ntcp ? ntcp : 1);
        rc = cur && client ? 0 : ERR_MEMORY;
    }
    if (rc == 0)
        rc = walk_streams(c, t.convs, t.count, cur, client, &nstreams);
    if (rc == 0)
        rc = mark_clients(c, client, nstreams);
    table_free(&t);
    PyMem_RawFree(cur);
    PyMem_RawFree(client);
    return rc;
}

/* ---- Python binding ---- */

#define NCOLS 12
static const char *const COL_NAMES[NCOLS] = {
    "tcp", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport",
    "flags", "seq", "ack", "seglen", "time",
};
static const Py_ssize_t COL_SIZES[NCOLS] = {1, 8, 8, 8, 8, 4, 4, 2, 4, 4, 4, 8};

static void bind_columns(columns *c, np_buf *in, np_buf *out, Py_ssize_t n)
{
    c->n = n;
    c->tcp = NP_PTR(in[0], uint8_t);
    c->src_hi = NP_PTR(in[1], uint64_t);
    c->src_lo = NP_PTR(in[2], uint64_t);
    c->dst_hi = NP_PTR(in[3], uint64_t);
    c->dst_lo = NP_PTR(in[4], uint64_t);
    c->sport = NP_PTR(in[5], int32_t);
    c->dport = NP_PTR(in[6], int32_t);
    c->flags = NP_PTR(in[7], uint16_t);
    c->seq = NP_PTR(in[8], uint32_t);
    c->ack = NP_PTR(in[9], uint32_t);
    c->seglen = NP_PTR(in[10], int32_t);
    c->time = NP_PTR(in[11], double);
    c->stream = NP_PTR(out[0], int64_t);
    c->from_client = NP_PTR(out[1], uint8_t);
    c->retrans = NP_PTR(out[2], uint8_t);
}

PyDoc_STRVAR(analyse_doc,
"analyse(cols, stream, from_client, retransmission) -> None\n\n"
"TCP analysis of the packet columns `cols` (a dict with tcp bool, src_hi,\n"
"src_lo, dst_hi, dst_lo uint64, sport, dport int32, flags uint16, seq, ack\n"
"uint32, seglen int32, time float64). Fills, per packet, stream (int64, -1\n"
"for non-TCP), from_client and retransmission (bool), exactly as\n"
"netprobe.analysis.tcp.analyse scattered back by its index.");

static PyObject *analyse(PyObject *self, PyObject *args)
{
    PyObject *cols, *out_obj[3];
    np_buf in[NCOLS], out[3];
    PyObject *result = NULL;
    columns c;
    int rc = 0;
    (void)self;
    for (int k = 0; k < NCOLS; k++)
        in[k].held = 0;
    for (int k = 0; k < 3; k++)
        out[k].held = 0;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyDict_Type, &cols, &out_obj[0], &out_obj[1],
                          &out_obj[2]))
        return NULL;
    if (np_get_col(cols, COL_NAMES[0], &in[0], 1, -1, 0) < 0)
        goto done;
    Py_ssize_t n = NP_LEN(in[0]);
    for (int k = 1; k < NCOLS; k++)
        if (np_get_col(cols, COL_NAMES[k], &in[k], COL_SIZES[k], n, 0) < 0)
            goto done;
    if (np_get(out_obj[0], &out[0], 8, n, 1, "stream") < 0
        || np_get(out_obj[1], &out[1], 1, n, 1, "from_client") < 0
        || np_get(out_obj[2], &out[2], 1, n, 1, "retransmission") < 0)
        goto done;
    if ((size_t)n >= UINT32_MAX) { /* conversations are numbered in 32 bits */
        PyErr_SetString(PyExc_ValueError, "too many packets for one analysis");
        goto done;
    }
    bind_columns(&c, in, out, n);
    Py_BEGIN_ALLOW_THREADS
    rc = run(&c);
    Py_END_ALLOW_THREADS
    if (rc == ERR_MEMORY)
        PyErr_NoMemory();
    else if (rc == ERR_OVERLAP)
        PyErr_SetString(PyExc_ValueError, "output arrays overlap the columns");
    else
        result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < NCOLS; k++)
        np_release(&in[k]);
    for (int k = 0; k < 3; k++)
        np_release(&out[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"analyse", analyse, METH_VARARGS, analyse_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.tcp",
    "TCP streams, client direction and retransmission marks "
    "(mirrors netprobe.analysis.tcp.analyse).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_tcp(void) { return PyModule_Create(&module); }
