/* netprobe._native.flows: the per-stream aggregates of the flow table.
 *
 * Owns: one pass over the packet table in frame order that keeps per-stream
 * state (counts, first and last times, bytes, the endpoints from the first
 * packet of each side, the first server RST and the first TLS alert), then a
 * pass over each stream's client SYNs (handshake RTT, sends per interface),
 * then writing the columns. Mirrors netprobe.analysis.flowtable._aggregate
 * (build() without _icmp): numpy takes a stream's rows in frame order (stable
 * sort by stream), so per-stream firsts and lasts in frame order are its values.
 * Must not: attach ICMP errors or decide verdicts (Python does both).
 */
#include "buffers.h"

#include <math.h>
#include <stdlib.h>

enum { FIN = 0x01, SYN = 0x02, RST = 0x04, ACK = 0x10 };

/* A stream of at most this many client SYNs finds its busiest interface by
 * comparing pairs; a longer one sorts its interfaces. */
#define FEW_SYNS 16
/* The pass fetches the state of the stream this many packets ahead. */
#define PREFETCH 16

typedef struct {
    const char *name;
    Py_ssize_t size;
} column;

/* Inputs, one value per packet (besides `stream`, which is int32 or int64). */
enum { I_FROM_CLIENT, I_RETR, I_FLAGS, I_TIME, I_SEGLEN, I_TLS_HS, I_TLS_ALERT, I_IFINDEX,
       I_TTL, I_SRC_HI, I_SRC_LO, I_DST_HI, I_DST_LO, I_SPORT, I_DPORT, I_IP, N_IN };
static const column IN[N_IN] = {
    {"from_client", 1}, {"retransmission", 1}, {"flags", 2}, {"time", 8}, {"seglen", 4},
    {"tls_hs", 2}, {"tls_alert", 2}, {"ifindex", 8}, {"ttl", 2}, {"src_hi", 8}, {"src_lo", 8},
    {"dst_hi", 8}, {"dst_lo", 8}, {"sport", 4}, {"dport", 4}, {"ip", 1},
};

/* Outputs, one value per stream; every one is 8 bytes (int64, uint64 or float64). */
enum { O_CLIENT_HI, O_CLIENT_LO, O_CLIENT_PORT, O_SERVER_HI, O_SERVER_LO, O_SERVER_PORT, O_IP,
       O_FIRST_TIME, O_LAST_TIME, O_PACKETS, O_CLIENT_BYTES, O_SERVER_BYTES, O_SYN,
       O_SYN_RETR, O_SYN_SENDS, O_SYNACK, O_DATA_RETR, O_HANDSHAKE_RTT, O_RST_CLIENT,
       O_RST_SERVER, O_RST_TTL, O_RST_TIME, O_FIN_CLIENT, O_FIN_SERVER, O_CLIENT_CLOSE,
       O_SERVER_CLOSE, O_CLIENT_HELLO, O_SERVER_HELLO, O_CLIENT_HELLO_TIME,
       O_SERVER_HELLO_TIME, O_TLS_ALERTS, O_ALERT_FROM_CLIENT, O_ALERT_DESCRIPTION,
       O_LAST_REQUEST, O_LAST_SERVER_DATA, N_OUT };
static const char *const OUT[N_OUT] = {
    "client_hi", "client_lo", "client_port", "server_hi", "server_lo", "server_port", "ip",
    "first_time", "last_time", "packets", "client_bytes", "server_bytes", "syn",
    "syn_retransmissions", "syn_sends", "synack", "data_retransmissions", "handshake_rtt",
    "rst_client", "rst_server", "rst_ttl", "rst_time", "fin_client", "fin_server",
    "client_close_time", "server_close_time", "client_hello", "server_hello",
    "client_hello_time", "server_hello_time", "tls_alerts", "alert_from_client",
    "alert_description", "last_request_time", "last_server_data_time",
};

/* The state of one stream, one cache line per kind of packet that updates it: a
 * stream's packets are spread over the capture, so each line a packet touches is
 * a likely cache miss. Counts start at 0, times at NaN, absent values at -1; a
 * count still at 0 says the packet is the stream's first of its kind. */
struct every_packet {
    int64_t packets, first_client, first_server; /* first row each side sent, or -1 */
    double last_time, client_bytes, server_bytes, last_server_data, last_request;
    /* bytes are summed in double, in frame order, as numpy's bincount sums them */
};
struct handshake {
    int64_t syn, syn_retr, synack, data_retr, syn_sends;
    double synack_time, rtt, unused;
};
struct closing {
    int64_t rst_client, rst_server, fin_client, fin_server, rst_ttl;
    double rst_time, client_close, server_close;
};
struct tls {
    int64_t client_hello, server_hello, alerts, alert_from_client, alert_description;
    double client_hello_time, server_hello_time, unused;
};
/* Client and server address and port: from the first packet each side sent, until
 * then from the first packet sent to it; IP version and time of the first packet. */
struct endpoints {
    uint64_t client_hi, client_lo, server_hi, server_lo;
    int64_t client_port, server_port, ip;
    double first_time;
};
struct flow {
    struct every_packet p;
    struct endpoints e;
    struct handshake h;
    struct closing c;
    struct tls t;
};
_Static_assert(sizeof(struct every_packet) == 64 && sizeof(struct endpoints) == 64
               && sizeof(struct handshake) == 64
               && sizeof(struct closing) == 64 && sizeof(struct tls) == 64,
               "one cache line each (aligned_alloc needs a multiple of 64 too)");

static const struct flow FRESH = {
    .p = {0, -1, -1, NAN, 0.0, 0.0, NAN, NAN},
    .e = {0, 0, 0, 0, 0, 0, 0, NAN},
    .h = {0, 0, 0, 0, 0, NAN, NAN, 0.0},
    .c = {0, 0, 0, 0, -1, NAN, NAN, NAN},
    .t = {0, 0, 0, -1, -1, NAN, NAN, 0.0},
};

typedef struct {
    Py_ssize_t rows, n; /* packets, streams */
    int64_t min_request;
    const int32_t *s32; /* exactly one of s32/s64 is set */
    const int64_t *s64;
    const void *in[N_IN];
    void *out[N_OUT];
    struct flow *flows; /* n */
    int64_t *syns;      /* rows of the client SYNs, in frame order */
    size_t nsyns, syns_cap;
} job;

#define IN_(j, k, type) ((const type *)(j)->in[k])
#define I64(j, k) ((int64_t *)(j)->out[k])
#define U64(j, k) ((uint64_t *)(j)->out[k])
#define F64(j, k) ((double *)(j)->out[k])

static int64_t stream_at(const job *j, Py_ssize_t i)
{
    return j->s32 ? (int64_t)j->s32[i] : j->s64[i];
}

/* At the first packet a side sends: its endpoint, and the other's if that one has
 * sent nothing yet. At the stream's first packet: IP version and time. */
static void row_endpoints(const job *j, struct endpoints *e, Py_ssize_t i, int client,
                          int other_sent, int first_packet)
{
    uint64_t src_hi = IN_(j, I_SRC_HI, uint64_t)[i], src_lo = IN_(j, I_SRC_LO, uint64_t)[i];
    uint64_t dst_hi = IN_(j, I_DST_HI, uint64_t)[i], dst_lo = IN_(j, I_DST_LO, uint64_t)[i];
    int64_t sport = IN_(j, I_SPORT, int32_t)[i], dport = IN_(j, I_DPORT, int32_t)[i];
    if (client) {
        e->client_hi = src_hi, e->client_lo = src_lo, e->client_port = sport;
        if (!other_sent)
            e->server_hi = dst_hi, e->server_lo = dst_lo, e->server_port = dport;
    } else {
        e->server_hi = src_hi, e->server_lo = src_lo, e->server_port = sport;
        if (!other_sent)
            e->client_hi = dst_hi, e->client_lo = dst_lo, e->client_port = dport;
    }
    if (first_packet) {
        e->ip = IN_(j, I_IP, uint8_t)[i];
        e->first_time = IN_(j, I_TIME, double)[i];
    }
}

/* Packets, last time, bytes, endpoints and the last request. */
static void row_counts(const job *j, struct flow *f, Py_ssize_t i, int client, double t)
{
    struct every_packet *p = &f->p;
    int32_t seg = IN_(j, I_SEGLEN, int32_t)[i];
    int64_t *first = client ? &p->first_client : &p->first_server;
    if (*first < 0) {
        *first = i;
        row_endpoints(j, &f->e, i, client, (client ? p->first_server : p->first_client) >= 0,
                      p->packets == 0);
    }
    p->packets++;
    p->last_time = t;
    if (seg > 0) {
        *(client ? &p->client_bytes : &p->server_bytes) += (double)seg;
        if (!client)
            p->last_server_data = t;
    }
    if (client && seg >= j->min_request && IN_(j, I_TLS_HS, int16_t)[i] < 0
        && !IN_(j, I_RETR, uint8_t)[i])
        p->last_request = t;
}

/* Remember a client SYN's row for the SYN pass. Returns -1 out of memory. */
static int keep_syn(job *j, Py_ssize_t i)
{
    if (j->nsyns == j->syns_cap) {
        size_t cap = j->syns_cap ? 2 * j->syns_cap : 4096;
        int64_t *more = realloc(j->syns, cap * sizeof *more);
        if (more == NULL)
            return -1;
        j->syns = more;
        j->syns_cap = cap;
    }
    j->syns[j->nsyns++] = i;
    return 0;
}

/* SYN, SYN/ACK and retransmission counts, the first SYN/ACK's time. -1 out of memory. */
static int row_handshake(job *j, struct handshake *h, Py_ssize_t i, int client, double t)
{
    unsigned flags = IN_(j, I_FLAGS, uint16_t)[i];
    int retr = IN_(j, I_RETR, uint8_t)[i] != 0;
    if ((flags & (SYN | ACK)) == SYN && client) {
        h->syn++;
        h->syn_retr += retr;
        if (keep_syn(j, i) < 0)
            return -1;
    }
    if ((flags & (SYN | ACK)) == (SYN | ACK) && !client && h->synack++ == 0)
        h->synack_time = t;
    if (retr && !(flags & SYN))
        h->data_retr++;
    return 0;
}

/* RST and FIN counts, the first RST (time, server TTL) and each side's first close. */
static void row_close(const job *j, struct closing *c, Py_ssize_t i, int client, double t)
{
    unsigned flags = IN_(j, I_FLAGS, uint16_t)[i];
    int rst = (flags & RST) != 0, fin = (flags & FIN) != 0;
    int64_t *rst_side = client ? &c->rst_client : &c->rst_server;
    int64_t *fin_side = client ? &c->fin_client : &c->fin_server;
    if (*rst_side + *fin_side == 0)
        *(client ? &c->client_close : &c->server_close) = t;
    if (rst) {
        if (c->rst_client + c->rst_server == 0)
            c->rst_time = t;
        if (!client && c->rst_server == 0)
            c->rst_ttl = IN_(j, I_TTL, int16_t)[i];
        (*rst_side)++;
    }
    *fin_side += fin;
}

/* TLS hellos and the first alert. */
static void row_tls(struct tls *s, int hs, int alert, int client, double t)
{
    if (hs == (client ? 1 : 2)) {
        int64_t *count = client ? &s->client_hello : &s->server_hello;
        if ((*count)++ == 0)
            *(client ? &s->client_hello_time : &s->server_hello_time) = t;
    }
    if (alert >= 0 && s->alerts++ == 0) {
        s->alert_from_client = client;
        s->alert_description = alert;
    }
}

/* One packet of the stream whose state is `f`. Returns -1 out of memory. */
static int row(job *j, struct flow *f, Py_ssize_t i)
{
    int client = IN_(j, I_FROM_CLIENT, uint8_t)[i] != 0;
    double t = IN_(j, I_TIME, double)[i];
    unsigned flags = IN_(j, I_FLAGS, uint16_t)[i];
    int hs = IN_(j, I_TLS_HS, int16_t)[i], alert = IN_(j, I_TLS_ALERT, int16_t)[i];
    row_counts(j, f, i, client, t);
    if (((flags & SYN) || IN_(j, I_RETR, uint8_t)[i]) && row_handshake(j, &f->h, i, client, t) < 0)
        return -1;
    if (flags & (RST | FIN))
        row_close(j, &f->c, i, client, t);
    if (hs >= 0 || alert >= 0)
        row_tls(&f->t, hs, alert, client, t);
    return 0;
}

/* The pass over the packets in frame order. Returns -1 on a stream number >= n,
 * -2 out of memory. */
static int pass_rows(job *j)
{
    for (Py_ssize_t i = 0; i < j->rows; i++) {
        int64_t s = stream_at(j, i);
        int64_t ahead = i + PREFETCH < j->rows ? stream_at(j, i + PREFETCH) : -1;
        if (ahead >= 0 && ahead < j->n)
            __builtin_prefetch(&j->flows[ahead], 1);
        if (s < 0)
            continue;
        if (s >= j->n)
            return -1;
        if (row(j, &j->flows[s], i) < 0)
            return -2;
    }
    return 0;
}

/* Rows of the client SYNs grouped by stream, in frame order within a stream:
 * rows[start[s]:start[s + 1]]. start has n + 1 items. */
static void group_syns(const job *j, int64_t *start, int64_t *rows)
{
    start[0] = 0;
    for (Py_ssize_t s = 0; s < j->n; s++)
        start[s + 1] = start[s] + j->flows[s].h.syn;
    for (size_t k = 0; k < j->nsyns; k++)
        rows[start[stream_at(j, j->syns[k])]++] = j->syns[k];
    for (Py_ssize_t s = j->n; s > 0; s--) /* the scatter moved each start to the next */
        start[s] = start[s - 1];
    start[0] = 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* The most rows on any one interface. `tmp` holds at least k items. */
static int64_t busiest_interface(const int64_t *ifindex, const int64_t *rows, int64_t k,
                                 int64_t *tmp)
{
    int64_t best = 0;
    if (k <= FEW_SYNS) {
        for (int64_t a = 0; a < k; a++) {
            int64_t same = 0;
            for (int64_t b = a; b < k; b++)
                same += ifindex[rows[b]] == ifindex[rows[a]];
            best = same > best ? same : best;
        }
        return best;
    }
    for (int64_t a = 0; a < k; a++)
        tmp[a] = ifindex[rows[a]];
    qsort(tmp, (size_t)k, sizeof *tmp, cmp_i64);
    for (int64_t a = 0, run = 0; a < k; a++) {
        run = (a > 0 && tmp[a] == tmp[a - 1]) ? run + 1 : 1;
        best = run > best ? run : best;
    }
    return best;
}

/* Seconds from the last client SYN (in frame order) whose time is at or before the
 * first SYN/ACK's to that SYN/ACK; NaN without either. */
static double handshake_rtt(const double *time, const int64_t *rows, int64_t k, double synack)
{
    int found = 0;
    double syn = 0.0;
    for (int64_t a = 0; a < k; a++) {
        if (time[rows[a]] <= synack) {
            syn = time[rows[a]];
            found = 1;
        }
    }
    return found ? synack - syn : NAN;
}

/* handshake RTT and SYN sends per interface from each stream's client SYNs.
 * Returns -1 out of memory. */
static int pass_syns(job *j)
{
    int64_t most = 0;
    for (Py_ssize_t s = 0; s < j->n; s++)
        most = j->flows[s].h.syn > most ? j->flows[s].h.syn : most;
    int64_t *start = malloc(((size_t)j->n + 1) * sizeof *start);
    int64_t *rows = malloc((j->nsyns + 1) * sizeof *rows);
    int64_t *tmp = malloc(((size_t)most + 1) * sizeof *tmp);
    int ok = start && rows && tmp;
    if (ok) {
        group_syns(j, start, rows);
        for (Py_ssize_t s = 0; s < j->n; s++) {
            struct handshake *h = &j->flows[s].h;
            int64_t k = start[s + 1] - start[s];
            h->rtt = handshake_rtt(IN_(j, I_TIME, double), rows + start[s], k, h->synack_time);
            h->syn_sends = busiest_interface(IN_(j, I_IFINDEX, int64_t), rows + start[s], k, tmp);
        }
    }
    free(start);
    free(rows);
    free(tmp);
    return ok ? 0 : -1;
}

/* A byte total as numpy's astype(int64) gives it (x86: INT64_MIN when out of range). */
static int64_t to_int64(double x)
{
    return (x >= -9223372036854775808.0 && x < 9223372036854775808.0) ? (int64_t)x : INT64_MIN;
}

/* Endpoints, IP version and time of the stream's first packet. A stream number no
 * packet has gets packet 0's destination (numpy's fill). */
static void write_endpoints(job *j, Py_ssize_t s, const struct flow *f)
{
    const struct endpoints *e = &f->e;
    int seen = f->p.packets > 0;
    U64(j, O_CLIENT_HI)[s] = seen ? e->client_hi : IN_(j, I_DST_HI, uint64_t)[0];
    U64(j, O_CLIENT_LO)[s] = seen ? e->client_lo : IN_(j, I_DST_LO, uint64_t)[0];
    I64(j, O_CLIENT_PORT)[s] = seen ? e->client_port : IN_(j, I_DPORT, int32_t)[0];
    U64(j, O_SERVER_HI)[s] = seen ? e->server_hi : IN_(j, I_DST_HI, uint64_t)[0];
    U64(j, O_SERVER_LO)[s] = seen ? e->server_lo : IN_(j, I_DST_LO, uint64_t)[0];
    I64(j, O_SERVER_PORT)[s] = seen ? e->server_port : IN_(j, I_DPORT, int32_t)[0];
    I64(j, O_IP)[s] = seen ? e->ip : IN_(j, I_IP, uint8_t)[0];
    F64(j, O_FIRST_TIME)[s] = e->first_time;
}

static void write_counts(job *j, Py_ssize_t s, const struct every_packet *p,
                         const struct handshake *h)
{
    F64(j, O_LAST_TIME)[s] = p->last_time;
    I64(j, O_PACKETS)[s] = p->packets;
    I64(j, O_CLIENT_BYTES)[s] = to_int64(p->client_bytes);
    I64(j, O_SERVER_BYTES)[s] = to_int64(p->server_bytes);
    F64(j, O_LAST_REQUEST)[s] = p->last_request;
    F64(j, O_LAST_SERVER_DATA)[s] = p->last_server_data;
    I64(j, O_SYN)[s] = h->syn;
    I64(j, O_SYN_RETR)[s] = h->syn_retr;
    I64(j, O_SYN_SENDS)[s] = h->syn_sends;
    I64(j, O_SYNACK)[s] = h->synack;
    I64(j, O_DATA_RETR)[s] = h->data_retr;
    F64(j, O_HANDSHAKE_RTT)[s] = h->rtt;
}

static void write_close_tls(job *j, Py_ssize_t s, const struct closing *c, const struct tls *t)
{
    I64(j, O_RST_CLIENT)[s] = c->rst_client;
    I64(j, O_RST_SERVER)[s] = c->rst_server;
    I64(j, O_RST_TTL)[s] = c->rst_ttl;
    F64(j, O_RST_TIME)[s] = c->rst_time;
    I64(j, O_FIN_CLIENT)[s] = c->fin_client;
    I64(j, O_FIN_SERVER)[s] = c->fin_server;
    F64(j, O_CLIENT_CLOSE)[s] = c->client_close;
    F64(j, O_SERVER_CLOSE)[s] = c->server_close;
    I64(j, O_CLIENT_HELLO)[s] = t->client_hello;
    I64(j, O_SERVER_HELLO)[s] = t->server_hello;
    F64(j, O_CLIENT_HELLO_TIME)[s] = t->client_hello_time;
    F64(j, O_SERVER_HELLO_TIME)[s] = t->server_hello_time;
    I64(j, O_TLS_ALERTS)[s] = t->alerts;
    I64(j, O_ALERT_FROM_CLIENT)[s] = t->alert_from_client;
    I64(j, O_ALERT_DESCRIPTION)[s] = t->alert_description;
}

/* 0, -1 on a stream number >= n, -2 out of memory. */
static int run(job *j)
{
    int rc = -2;
    j->flows = aligned_alloc(64, ((size_t)j->n + 1) * sizeof *j->flows);
    if (j->flows) {
        for (Py_ssize_t s = 0; s < j->n; s++)
            j->flows[s] = FRESH;
        rc = pass_rows(j);
        if (rc == 0)
            rc = pass_syns(j) < 0 ? -2 : 0;
        for (Py_ssize_t s = 0; rc == 0 && s < j->n; s++) {
            const struct flow *f = &j->flows[s];
            write_endpoints(j, s, f);
            write_counts(j, s, &f->p, &f->h);
            write_close_tls(j, s, &f->c, &f->t);
        }
    }
    free(j->flows);
    free(j->syns);
    return rc;
}

/* `stream` as int32 or int64, `rows` items. */
static int get_stream(PyObject *packets, np_buf *b, Py_ssize_t rows)
{
    if (np_get_col(packets, "stream", b, 8, rows, 0) == 0)
        return 0;
    if (!b->held || b->view.itemsize != 4)
        return -1;
    np_release(b);
    PyErr_Clear();
    return np_get_col(packets, "stream", b, 4, rows, 0);
}

/* Buffers of every column into `j`; the caller releases `in`, `out` and `stream`. */
static int get_columns(job *j, PyObject *packets, PyObject *flows, np_buf *in, np_buf *out,
                       np_buf *stream)
{
    if (np_get_col(packets, "time", &in[I_TIME], 8, -1, 0) < 0
        || np_get_col(flows, "packets", &out[O_PACKETS], 8, -1, 1) < 0)
        return -1;
    j->rows = NP_LEN(in[I_TIME]);
    j->n = NP_LEN(out[O_PACKETS]);
    for (int k = 0; k < N_IN; k++)
        if (k != I_TIME && np_get_col(packets, IN[k].name, &in[k], IN[k].size, j->rows, 0) < 0)
            return -1;
    for (int k = 0; k < N_OUT; k++)
        if (k != O_PACKETS && np_get_col(flows, OUT[k], &out[k], 8, j->n, 1) < 0)
            return -1;
    if (get_stream(packets, stream, j->rows) < 0)
        return -1;
    if (j->n > 0 && j->rows == 0) {
        PyErr_SetString(PyExc_ValueError, "streams without packets");
        return -1;
    }
    for (int k = 0; k < N_IN; k++)
        j->in[k] = in[k].view.buf;
    for (int k = 0; k < N_OUT; k++)
        j->out[k] = out[k].view.buf;
    j->s32 = stream->view.itemsize == 4 ? NP_PTR(*stream, int32_t) : NULL;
    j->s64 = stream->view.itemsize == 8 ? NP_PTR(*stream, int64_t) : NULL;
    return 0;
}

PyDoc_STRVAR(build_doc,
"build(packets, flows, min_request_bytes) -> None\n\n"
"Fill the per-stream columns of `flows` (dict of int64/uint64/float64 arrays,\n"
"one item per stream; every item is overwritten) from the packet table\n"
"`packets` (dict of columns with the dtypes of netprobe.capture.decode.CORE,\n"
"plus stream int32/int64, from_client and retransmission bool). Raises\n"
"ValueError when a stream number is not below len(flows['packets']).");

static PyObject *build(PyObject *self, PyObject *args)
{
    PyObject *packets, *flows, *result = NULL;
    np_buf in[N_IN], out[N_OUT], stream;
    job j;
    int rc;
    (void)self;
    memset(in, 0, sizeof in);
    memset(out, 0, sizeof out);
    memset(&stream, 0, sizeof stream);
    memset(&j, 0, sizeof j);
    if (!PyArg_ParseTuple(args, "O!O!L", &PyDict_Type, &packets, &PyDict_Type, &flows,
                          &j.min_request))
        return NULL;
    if (get_columns(&j, packets, flows, in, out, &stream) < 0)
        goto done;
    Py_BEGIN_ALLOW_THREADS
    rc = run(&j);
    Py_END_ALLOW_THREADS
    if (rc == -1)
        PyErr_SetString(PyExc_ValueError, "a stream number is not below the number of flows");
    else if (rc == -2)
        PyErr_NoMemory();
    else
        result = Py_NewRef(Py_None);
done:
    for (int k = 0; k < N_IN; k++)
        np_release(&in[k]);
    for (int k = 0; k < N_OUT; k++)
        np_release(&out[k]);
    np_release(&stream);
    return result;
}

static PyMethodDef methods[] = {
    {"build", build, METH_VARARGS, build_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.flows",
    "Per-stream aggregates of the flow table (mirrors "
    "netprobe.analysis.flowtable._aggregate).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_flows(void) { return PyModule_Create(&module); }
