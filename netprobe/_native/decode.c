/* netprobe._native.decode: one Batch of raw records to the CORE columns.
 *
 * Owns: decoding packet by packet what netprobe.capture.decode.decode(batch,
 * detail=False) decodes with numpy gathers: the link layer exactly as
 * netprobe.capture.linklayer.locate (PKTAP, VLAN tags, SLL/SLL2 ifindex,
 * NULL/LOOP byte order, PPP, IPoIB, raw IP), IPv4/IPv6 (extension headers,
 * jumbograms, fragments), TCP (seglen, hlen, TLS handshake type and alert),
 * UDP and ICMP/ICMPv6 errors with the flow they quote, the packet inside
 * tunnels as netprobe.capture.tunnels finds it (VXLAN, Geneve, GRE, IP-in-IP,
 * IPv6-in-IP; at most MAX_TUNNEL_DEPTH deep) and encrypted node-to-node
 * traffic (WireGuard, ESP, ESP in UDP). It writes every CORE column except
 * time, interface and frame_len (Python sets those).
 * Must not: allocate the columns (Python does, already at their 'absent'
 * values), decode TCP options (detail=True stays numpy) or hold the GIL in
 * the loop.
 *
 * Exactness. The numpy code reads some bytes it does not need (past caplen,
 * into the PAD zeros after the chunk) and would raise IndexError on a read
 * past the end of `data`. Every read here goes through a checked accessor;
 * this code makes each read the numpy code makes for the packet (plus, for
 * VLAN tags, the reads numpy makes for any packet of the same link type, see
 * vlan(); and the bytes of a GRE key numpy reads as one uint32). When one of them would fall outside `data`, or an offset lies
 * outside it (or `data` is shorter than 8 bytes), decode() returns False
 * without a result and the caller runs the numpy code, which then raises or
 * gives its answer. Records the container readers yield always end PAD
 * bytes before the end of `data` and no read reaches 50 bytes past a
 * record's end (see PAD), so that never happens for real captures.
 * Arithmetic on the 64-bit lengths wraps, as numpy's does.
 */
#include "buffers.h"

/* records.PAD, the zero bytes after each chunk, and the farthest read past a
 * record's end (offset + caplen): the TLS alert description after a TCP
 * header of 60 bytes that starts 20 bytes before the end. */
#define PAD 128
#define MAX_READ_PAST_END 46
_Static_assert(MAX_READ_PAST_END < PAD, "records from the readers never make decode() decline");

/* linklayer.py */
#define LT_NULL 0
#define LT_ETHERNET 1
#define LT_PPP 9
#define LT_PPP_HDLC 50
#define LT_LOOP 108
#define LT_SLL 113
#define LT_IPV4 228
#define LT_IPV6 229
#define LT_IPOIB 242
#define LT_PKTAP 258
#define LT_SLL2 276
#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define MAX_VLAN_TAGS 3
#define VERSION_ASK 7 /* raw IP: the version nibble decides */

/* decode.py */
#define P_TCP 6
#define P_UDP 17
#define P_ICMP 1
#define P_ICMPV6 58
#define MAX_EXT_HEADERS 8
#define V4_MAPPED 0xFFFF00000000ULL

/* tunnels.py: the `tunnel` and `encrypted` columns' values, ports and protocols. */
#define T_VXLAN 1
#define T_GENEVE 2
#define T_GRE 3
#define T_IPIP 4
#define T_IPV6IP 5
#define E_WIREGUARD 1
#define E_ESP 2
#define E_ESP_IN_UDP 3
#define P_IPIP 4
#define P_IPV6IP 41
#define P_GRE 47
#define P_ESP 50
#define ETH_BRIDGE 0x6558
#define MAX_TUNNEL_DEPTH 4
#define NO_VNI (-1LL)

/* 'absent' values: an IPv6 header chain that ends before a transport header,
 * an encrypted TLS alert, an SLL2 record too short for its interface index. */
#define DEAD_V6_PROTO (-1)
#define ENCRYPTED_ALERT 256
#define NO_SLL2_IFINDEX (-1LL)

/* ---- checked reads of the batch's bytes ---- */

typedef struct {
    const uint8_t *d;
    int64_t len;
    int bad; /* a read fell outside `d`: the batch is left to numpy */
} src_t;

static inline unsigned rd8(src_t *s, int64_t i)
{
    if (i < 0 || i >= s->len) {
        s->bad = 1;
        return 0;
    }
    return s->d[i];
}

static inline unsigned rd16(src_t *s, int64_t i) /* records.u16be: two byte gathers */
{
    unsigned hi = rd8(s, i);
    return hi << 8 | rd8(s, i + 1);
}

static inline int fits(src_t *s, int64_t i, int64_t size) /* records._view bounds */
{
    if (i < 0 || i > s->len - size) {
        s->bad = 1;
        return 0;
    }
    return 1;
}

static inline uint32_t rd32(src_t *s, int64_t i)
{
    if (!fits(s, i, 4))
        return 0;
    const uint8_t *p = s->d + i;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint32_t rd32le(src_t *s, int64_t i)
{
    if (!fits(s, i, 4))
        return 0;
    const uint8_t *p = s->d + i;
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static inline uint64_t rd64(src_t *s, int64_t i)
{
    if (!fits(s, i, 8))
        return 0;
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v = v << 8 | s->d[i + k];
    return v;
}

/* int64 arithmetic that wraps like numpy's (no undefined overflow). */
static inline int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t wsub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* ---- the columns ---- */

enum {
    C_IFINDEX, C_UNKNOWN, C_IP, C_SRC_HI, C_SRC_LO, C_DST_HI, C_DST_LO, C_TTL, C_PROTO,
    C_SPORT, C_DPORT, C_TCP, C_FLAGS, C_SEQ, C_ACK, C_WIN, C_HLEN, C_SEGLEN, C_TLS_HS,
    C_TLS_ALERT, C_ICMP_TYPE, C_ICMP_CODE, C_Q_IP, C_Q_SRC_HI, C_Q_SRC_LO, C_Q_DST_HI,
    C_Q_DST_LO, C_Q_PROTO, C_Q_SPORT, C_Q_DPORT, C_Q_SEQ, C_TUNNEL, C_ENCRYPTED, C_OUTER_IP,
    C_OUTER_SRC_HI, C_OUTER_SRC_LO, C_OUTER_DST_HI, C_OUTER_DST_LO, C_VNI, NCOLS
};

static const char *const COL_NAMES[NCOLS] = {
    "ifindex", "unknown_link", "ip", "src_hi", "src_lo", "dst_hi", "dst_lo", "ttl", "proto",
    "sport", "dport", "tcp", "flags", "seq", "ack", "win", "hlen", "seglen", "tls_hs",
    "tls_alert", "icmp_type", "icmp_code", "q_ip", "q_src_hi", "q_src_lo", "q_dst_hi",
    "q_dst_lo", "q_proto", "q_sport", "q_dport", "q_seq", "tunnel", "encrypted", "outer_ip",
    "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", "vni",
};

static const Py_ssize_t COL_SIZES[NCOLS] = {
    8, 1, 1, 8, 8, 8, 8, 2, 2, 4, 4, 1, 2, 4, 4, 2, 1, 4, 2, 2, 2, 2, 1, 8, 8, 8, 8, 2, 4, 4, 8,
    1, 1, 1, 8, 8, 8, 8, 8,
};

typedef struct {
    int64_t *ifindex;
    uint8_t *unknown_link, *ip, *tcp, *hlen, *q_ip, *tunnel, *encrypted, *outer_ip;
    uint64_t *src_hi, *src_lo, *dst_hi, *dst_lo, *q_src_hi, *q_src_lo, *q_dst_hi, *q_dst_lo;
    uint64_t *outer_src_hi, *outer_src_lo, *outer_dst_hi, *outer_dst_lo;
    int16_t *ttl, *proto, *tls_hs, *tls_alert, *icmp_type, *icmp_code, *q_proto;
    int32_t *sport, *dport, *seglen, *q_sport, *q_dport;
    uint16_t *flags, *win;
    uint32_t *seq, *ack;
    int64_t *q_seq, *vni;
} cols_t;

typedef struct {
    const uint8_t *data;
    int64_t len;
    Py_ssize_t n;
    const int64_t *offset, *caplen, *origlen;
    const int32_t *linktype;
} batch_t;

/* What one packet carries from one layer to the next. */
typedef struct {
    int64_t end, rep;  /* offset + caplen, offset + origlen */
    int64_t pos;       /* network header (-1: none) */
    int version;       /* 4, 6, VERSION_ASK or 0 */
    int64_t l4;        /* transport header (-1: none) */
    int64_t l4_len;    /* transport bytes per the IP length */
    int proto;         /* the proto column as written (-1: absent) */
} pkt_t;

/* ---- link layer (linklayer.locate) ---- */

static int supported(int32_t lt)
{
    switch (lt) {
    case LT_ETHERNET: case LT_PPP: case LT_PPP_HDLC: case 12: case 14: case 101:
    case LT_IPV4: case LT_IPV6: case LT_NULL: case LT_LOOP: case LT_SLL: case LT_SLL2:
    case LT_IPOIB: case LT_PKTAP:
        return 1;
    default:
        return 0;
    }
}

static int eth_version(unsigned et) { return et == ETH_IPV4 ? 4 : et == ETH_IPV6 ? 6 : 0; }

static int is_tpid(unsigned et) { return et == 0x8100 || et == 0x88A8 || et == 0x9100; }

/* linklayer.vlan_tags: skip up to three tags. numpy gathers the next ethertype
 * at pos + 2 for every packet of the link type while any of them is still
 * tagged; a packet that stopped early is read there again, so that read is
 * checked too (a superset of numpy's reads: never a miss). */
static unsigned vlan(src_t *s, unsigned et, int64_t *pos, int64_t end)
{
    int k;
    for (k = 0; k < MAX_VLAN_TAGS; k++) {
        if (!is_tpid(et) || *pos + 4 > end)
            break;
        et = rd16(s, *pos + 2);
        *pos += 4;
    }
    if (k < MAX_VLAN_TAGS)
        (void)rd16(s, *pos + 2);
    return et;
}

/* Ethernet-like headers: the ethertype at `et_at`, the payload at `o + hdr`. */
static void ether_like(src_t *s, int64_t o, int64_t e, int64_t et_at, int64_t hdr,
                       int64_t *p, int *v)
{
    int64_t pos = o + hdr;
    unsigned et = vlan(s, rd16(s, et_at), &pos, e);
    *p = o + hdr <= e ? pos : -1;
    *v = eth_version(et);
}

static void null_loop(src_t *s, int32_t lt, int64_t o, int64_t e, int64_t *p, int *v)
{
    uint32_t fam = lt == LT_LOOP ? rd32(s, o) : rd32le(s, o);
    if (fam & 0xFFFF0000u) /* written in the other byte order */
        fam = (fam >> 24) | ((fam >> 8) & 0xFF00u) | ((fam << 8) & 0xFF0000u) | (fam << 24);
    *v = fam == 2 ? 4 : (fam == 10 || fam == 24 || fam == 28 || fam == 30) ? 6 : 0;
    *p = o + 4 <= e ? o + 4 : -1;
}

static void ppp(src_t *s, int64_t o, int64_t e, int64_t *p, int *v)
{
    unsigned a = rd8(s, o), b = rd8(s, o + 1);
    int64_t at = o + ((a == 0xFF && b == 0x03) ? 2 : 0);
    unsigned proto = rd16(s, at);
    *v = proto == 0x0021 ? 4 : proto == 0x0057 ? 6 : 0;
    *p = at + 2 <= e ? at + 2 : -1;
}

/* linklayer._one_link for one packet; SLL2 also writes the ifindex. */
static void one_link(src_t *s, const cols_t *c, Py_ssize_t i, int32_t lt, int64_t o, int64_t e,
                     int64_t *p, int *v)
{
    *p = -1;
    *v = 0;
    switch (lt) {
    case LT_ETHERNET:
        ether_like(s, o, e, o + 12, 14, p, v);
        return;
    case LT_SLL:
        ether_like(s, o, e, o + 14, 16, p, v);
        return;
    case LT_SLL2: {
        uint32_t index = rd32(s, o + 4);
        c->ifindex[i] = o + 20 <= e ? (int64_t)index : NO_SLL2_IFINDEX;
        ether_like(s, o, e, o, 20, p, v);
        return;
    }
    case 12: case 14: case 101:
        *p = o;
        *v = VERSION_ASK;
        return;
    case LT_IPV4: case LT_IPV6:
        *p = o;
        *v = lt == LT_IPV4 ? 4 : 6;
        return;
    case LT_NULL: case LT_LOOP:
        null_loop(s, lt, o, e, p, v);
        return;
    case LT_PPP: case LT_PPP_HDLC:
        ppp(s, o, e, p, v);
        return;
    case LT_IPOIB: /* 40 bytes of destination address, then type and reserved */
        *v = eth_version(rd16(s, o + 40));
        *p = o + 44 <= e ? o + 44 : -1;
        return;
    default:
        return;
    }
}

static void link_layer(src_t *s, const cols_t *c, Py_ssize_t i, int64_t off, int32_t lt,
                       pkt_t *k)
{
    int64_t start = off, p;
    int v;
    if (lt == LT_PKTAP && off + 8 <= k->end) { /* little-endian header length, inner DLT */
        int64_t hdr = rd32le(s, off);
        start = min64(off + hdr, k->end);
        lt = (int32_t)rd32le(s, off + 4);
    }
    c->unknown_link[i] = !supported(lt);
    one_link(s, c, i, lt, start, k->end, &p, &v);
    int ok = p >= 0 && p <= k->end;
    k->pos = ok ? p : -1;
    k->version = ok ? v : 0;
}

/* ---- network layer (decode._ipv4, decode._ipv6) ---- */

/* decode._ipv4_header: whether the IPv4 header at pos is decoded, its lengths. */
static int ipv4_header(src_t *s, int64_t pos, int64_t end, int64_t rep, int64_t *ihl,
                       int64_t *total)
{
    unsigned b0 = rd8(s, pos);
    if (!(pos + 20 <= end && (b0 >> 4) == 4))
        return 0;
    *ihl = (int64_t)(b0 & 0x0F) * 4;
    *total = rd16(s, pos + 2);
    if (*total == 0) /* TSO/BIG TCP: use what the frame holds */
        *total = wsub(rep, pos);
    return *ihl >= 20 && *total >= *ihl;
}

static void ipv4(src_t *s, const cols_t *c, Py_ssize_t i, pkt_t *k)
{
    int64_t pos = k->pos, ihl, total;
    if (!ipv4_header(s, pos, k->end, k->rep, &ihl, &total))
        return;
    c->ip[i] = 4;
    c->src_hi[i] = 0;
    c->dst_hi[i] = 0;
    c->src_lo[i] = rd32(s, pos + 12) | V4_MAPPED;
    c->dst_lo[i] = rd32(s, pos + 16) | V4_MAPPED;
    c->ttl[i] = (int16_t)rd8(s, pos + 8);
    k->proto = (int)rd8(s, pos + 9);
    c->proto[i] = (int16_t)k->proto;
    unsigned frag = rd16(s, pos + 6);
    int64_t start = pos + ihl;
    k->l4 = ((frag & 0x3FFF) == 0 && start <= k->end) ? start : -1;
    k->l4_len = wsub(min64(total, wsub(k->rep, pos)), ihl);
}

static int is_ext(unsigned nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60; }

/* One extension header at `cur`; returns 0 when it is a real fragment. */
static int ext_header(src_t *s, unsigned *nh, int64_t *cur, int64_t *plen)
{
    int64_t at = *cur;
    unsigned h = *nh, len = rd8(s, at + 1);
    int64_t size = h == 44 ? 8 : h == 51 ? ((int64_t)len + 2) * 4 : ((int64_t)len + 1) * 8;
    unsigned fo = rd16(s, at + 2);
    unsigned j2 = rd8(s, at + 2), j3 = rd8(s, at + 3);
    uint32_t jumbo = rd32(s, at + 4);
    if (h == 0 && *plen == 0 && j2 == 0xC2 && j3 == 4)
        *plen = jumbo;
    *nh = rd8(s, at);
    *cur = at + size;
    return !(h == 44 && (fo & 0xFFF9) != 0);
}

static void ipv6(src_t *s, const cols_t *c, Py_ssize_t i, pkt_t *k)
{
    int64_t pos = k->pos;
    unsigned b0 = rd8(s, pos);
    if (!(pos + 40 <= k->end && (b0 >> 4) == 6))
        return;
    c->ip[i] = 6;
    c->src_hi[i] = rd64(s, pos + 8);
    c->src_lo[i] = rd64(s, pos + 16);
    c->dst_hi[i] = rd64(s, pos + 24);
    c->dst_lo[i] = rd64(s, pos + 32);
    c->ttl[i] = (int16_t)rd8(s, pos + 7);
    int64_t plen = rd16(s, pos + 4), cur = pos + 40;
    unsigned nh = rd8(s, pos + 6);
    int alive = 1;
    for (int n = 0; n < MAX_EXT_HEADERS && alive && is_ext(nh); n++) {
        if (cur + 8 > k->end)
            alive = 0;
        else
            alive = ext_header(s, &nh, &cur, &plen);
    }
    /* A zero payload length without a jumbo option stays zero. */
    k->proto = alive ? (int)nh : DEAD_V6_PROTO;
    c->proto[i] = (int16_t)k->proto;
    k->l4 = alive && cur <= k->end ? cur : -1;
    k->l4_len = wsub(min64(plen + 40, wsub(k->rep, pos)), cur - pos);
}

/* ---- transport (decode._tcp, _udp, _icmp) ---- */

/* TLS record starting the payload at p: handshake type or alert description. */
static void tls(src_t *s, const cols_t *c, Py_ssize_t i, int64_t p, int64_t have)
{
    unsigned b0 = rd8(s, p), b1 = rd8(s, p + 1), b2 = rd8(s, p + 2);
    if (!(have >= 6 && b1 == 3 && b2 <= 4))
        return;
    if (b0 == 0x16)
        c->tls_hs[i] = (int16_t)rd8(s, p + 5);
    if (b0 == 0x15) {
        unsigned len = rd16(s, p + 3), desc = rd8(s, p + 6);
        c->tls_alert[i] = (int16_t)((len == 2 && have >= 7) ? desc : ENCRYPTED_ALERT);
    }
}

static void tcp(src_t *s, const cols_t *c, Py_ssize_t i, const pkt_t *k)
{
    int64_t o = k->l4;
    if (!(o + 20 <= k->end && k->l4_len >= 20))
        return;
    c->tcp[i] = 1;
    c->sport[i] = (int32_t)rd16(s, o);
    c->dport[i] = (int32_t)rd16(s, o + 2);
    c->seq[i] = rd32(s, o + 4);
    c->ack[i] = rd32(s, o + 8);
    c->flags[i] = (uint16_t)(rd16(s, o + 12) & 0x0FFF);
    c->win[i] = (uint16_t)rd16(s, o + 14);
    int64_t hlen = (int64_t)(rd8(s, o + 12) >> 4) * 4;
    c->hlen[i] = (uint8_t)hlen;
    int64_t seglen = wsub(k->l4_len, hlen);
    int valid = hlen >= 20 && seglen >= 0;
    c->seglen[i] = valid ? (int32_t)min64(seglen, INT32_MAX) : -1;
    int64_t p = o + hlen;
    tls(s, c, i, p, valid ? min64(seglen, wsub(k->end, p)) : 0);
}

static void udp(src_t *s, const cols_t *c, Py_ssize_t i, const pkt_t *k)
{
    int64_t o = k->l4;
    if (!(o + 8 <= k->end))
        return;
    c->sport[i] = (int32_t)rd16(s, o);
    c->dport[i] = (int32_t)rd16(s, o + 2);
}

static int is_error(unsigned kind, int v6)
{
    if (v6)
        return kind >= 1 && kind <= 4;
    return kind == 3 || kind == 4 || kind == 5 || kind == 11 || kind == 12;
}

/* The IP header an ICMP error quotes at q; returns where its transport starts
 * (-1: not a usable quote). */
static int64_t quoted_ip(src_t *s, const cols_t *c, Py_ssize_t i, int64_t q, int64_t end, int v6)
{
    unsigned q0 = rd8(s, q);
    if (v6) {
        if (!(q + 40 <= end && (q0 >> 4) == 6))
            return -1;
        c->q_ip[i] = 6;
        c->q_src_hi[i] = rd64(s, q + 8);
        c->q_src_lo[i] = rd64(s, q + 16);
        c->q_dst_hi[i] = rd64(s, q + 24);
        c->q_dst_lo[i] = rd64(s, q + 32);
        c->q_proto[i] = (int16_t)rd8(s, q + 6);
        return q + 40;
    }
    if (!(q + 20 <= end && (q0 >> 4) == 4 && (q0 & 0x0F) >= 5))
        return -1;
    c->q_ip[i] = 4;
    c->q_src_lo[i] = rd32(s, q + 12) | V4_MAPPED;
    c->q_dst_lo[i] = rd32(s, q + 16) | V4_MAPPED;
    c->q_proto[i] = (int16_t)rd8(s, q + 9);
    return q + (int64_t)(q0 & 0x0F) * 4;
}

static void icmp(src_t *s, const cols_t *c, Py_ssize_t i, const pkt_t *k, int v6)
{
    int64_t o = k->l4, end = k->end;
    if (!(o + 4 <= end))
        return;
    unsigned kind = rd8(s, o);
    c->icmp_type[i] = (int16_t)kind;
    c->icmp_code[i] = (int16_t)rd8(s, o + 1);
    if (!is_error(kind, v6))
        return;
    int64_t inner = quoted_ip(s, c, i, o + 8, end, v6);
    if (inner < 0 || !(inner + 4 <= end))
        return;
    c->q_sport[i] = (int32_t)rd16(s, inner);
    c->q_dport[i] = (int32_t)rd16(s, inner + 2);
    if (inner + 8 <= end && c->q_proto[i] == P_TCP)
        c->q_seq[i] = rd32(s, inner + 4);
}

/* ---- tunnels (tunnels.unwrap, tunnels.encrypted, decode._tunnels) ---- */

/* The packet inside a tunnel. */
typedef struct {
    int64_t pos, rep; /* inner network header; the tunnel's payload end */
    int version;      /* 4, 6, VERSION_ASK or 0 (nothing decodable inside) */
    int kind;         /* T_* */
    int64_t vni;      /* VNI or GRE key, NO_VNI */
} inner_t;

static int port_meaning(unsigned port)
{
    switch (port) {
    case 4789: case 8472: return T_VXLAN;
    case 6081: return T_GENEVE;
    case 51820: return -E_WIREGUARD;
    case 4500: return -E_ESP_IN_UDP;
    default: return 0;
    }
}

/* tunnels.udp_port: the low port first, as Wireshark tries them. */
static int udp_meaning(unsigned sport, unsigned dport)
{
    unsigned lo = sport < dport ? sport : dport, hi = sport < dport ? dport : sport;
    int m = port_meaning(lo);
    return m ? m : port_meaning(hi);
}

/* tunnels._ethernet: an inner Ethernet frame; the IP version (0: none) and where it starts. */
static int inner_ethernet(src_t *s, int64_t at, int64_t stop, int64_t *pos)
{
    *pos = -1;
    if (!(at + 14 <= stop))
        return 0;
    *pos = at + 14;
    return eth_version(vlan(s, rd16(s, at + 12), pos, stop));
}

/* tunnels._by_ethertype: GRE's and Geneve's protocol type. */
static int by_ethertype(src_t *s, unsigned et, int64_t at, int64_t stop, int64_t *pos)
{
    *pos = at;
    if (et == ETH_IPV4)
        return VERSION_ASK;
    if (et == ETH_IPV6)
        return 6;
    if (et == ETH_BRIDGE)
        return inner_ethernet(s, at, stop, pos);
    return 0;
}

static int gre(src_t *s, int64_t o, int64_t end, int64_t payload_end, inner_t *in)
{
    int64_t stop = min64(end, payload_end);
    if (!(o + 4 <= stop))
        return 0;
    unsigned flags = rd16(s, o), et = rd16(s, o + 2);
    int64_t size = 4 + 4 * ((flags & 0xC000) != 0) + 4 * ((flags & 0x2000) != 0)
                   + 4 * ((flags & 0x1000) != 0) + 4 * ((flags & 7) == 1 && (flags & 0x0080));
    if ((flags & 0x4000) || !(o + size <= stop)) /* routing present: not decoded */
        return 0;
    in->vni = (flags & 0x2000) ? (int64_t)rd32(s, o + 4 + 4 * ((flags & 0x8000) != 0)) : NO_VNI;
    in->kind = T_GRE;
    in->rep = payload_end;
    in->version = by_ethertype(s, et, o + size, stop, &in->pos);
    return in->version != 0;
}

/* VXLAN and Geneve: the UDP length (at least 8) bounds the tunnel's payload. */
static int udp_tunnel(src_t *s, int64_t o, int64_t end, int64_t payload_end, inner_t *in)
{
    if (!(o + 8 <= end))
        return 0;
    unsigned sport = rd16(s, o), dport = rd16(s, o + 2);
    int kind = udp_meaning(sport, dport);
    int64_t ulen = rd16(s, o + 4);
    if (!((kind == T_VXLAN || kind == T_GENEVE) && ulen >= 8))
        return 0;
    payload_end = min64(payload_end, o + ulen);
    int64_t stop = min64(end, payload_end), h = o + 8;
    if (!(h + 8 <= stop))
        return 0;
    in->vni = (int64_t)(rd32(s, h + 4) >> 8);
    in->kind = kind;
    in->rep = payload_end;
    if (kind == T_VXLAN) {
        in->version = inner_ethernet(s, h + 8, stop, &in->pos);
        return in->version != 0;
    }
    int64_t size = 8 + (int64_t)(rd8(s, h) & 0x3F) * 4;
    if (!(h + size <= stop))
        return 0;
    in->version = by_ethertype(s, rd16(s, h + 2), h + size, stop, &in->pos);
    return in->version != 0;
}

/* tunnels.unwrap for one packet whose transport starts at k->l4. */
static int tunnel(src_t *s, const pkt_t *k, inner_t *in)
{
    int64_t payload_end = wadd(k->l4, k->l4_len);
    if (k->proto == P_IPIP || k->proto == P_IPV6IP) {
        in->pos = k->l4;
        in->version = k->proto == P_IPIP ? VERSION_ASK : 6;
        in->kind = k->proto == P_IPIP ? T_IPIP : T_IPV6IP;
        in->rep = payload_end;
        in->vni = NO_VNI;
        return 1;
    }
    if (k->proto == P_GRE)
        return gre(s, k->l4, k->end, payload_end, in);
    if (k->proto == P_UDP)
        return udp_tunnel(s, k->l4, k->end, payload_end, in);
    return 0;
}

/* decode._ip_header_ok: ipv4()/ipv6() decode the header at pos. */
static int ip_header_ok(src_t *s, int64_t pos, int version, int64_t end, int64_t rep)
{
    int64_t ihl, total;
    if (version == 4)
        return ipv4_header(s, pos, end, rep, &ihl, &total);
    if (version == 6) {
        unsigned b0 = rd8(s, pos);
        return pos + 40 <= end && (b0 >> 4) == 6;
    }
    return 0;
}

static int ask_version(src_t *s, int64_t pos)
{
    unsigned nib = rd8(s, pos) >> 4;
    return nib == 4 ? 4 : nib == 6 ? 6 : 0;
}

static void network(src_t *s, const cols_t *c, Py_ssize_t i, pkt_t *k)
{
    if (k->version == 4 && k->pos >= 0)
        ipv4(s, c, i, k);
    else if (k->version == 6 && k->pos >= 0)
        ipv6(s, c, i, k);
}

/* decode._tunnels: the packet becomes the one inside; the outermost tunnel is kept aside. */
static void tunnels(src_t *s, const cols_t *c, Py_ssize_t i, pkt_t *k)
{
    for (int depth = 0; depth < MAX_TUNNEL_DEPTH && k->l4 >= 0; depth++) {
        inner_t in;
        if (!tunnel(s, k, &in))
            return;
        int64_t stop = min64(k->end, in.rep); /* nothing past the tunnel's payload */
        int v = in.version == VERSION_ASK ? ask_version(s, in.pos) : in.version;
        if (!ip_header_ok(s, in.pos, v, stop, in.rep))
            return;
        if (c->tunnel[i] == 0) {
            c->tunnel[i] = (uint8_t)in.kind;
            c->vni[i] = in.vni;
            c->outer_ip[i] = c->ip[i];
            c->outer_src_hi[i] = c->src_hi[i];
            c->outer_src_lo[i] = c->src_lo[i];
            c->outer_dst_hi[i] = c->dst_hi[i];
            c->outer_dst_lo[i] = c->dst_lo[i];
        }
        k->pos = in.pos;
        k->version = v;
        k->end = stop;
        k->rep = in.rep;
        k->l4 = -1;
        k->l4_len = 0;
        network(s, c, i, k);
    }
}

/* tunnels.encrypted: node-to-node traffic whose inside cannot be read. */
static int encrypted(src_t *s, const cols_t *c, Py_ssize_t i, const pkt_t *k)
{
    if (k->proto == P_ESP)
        return E_ESP;
    if (k->proto != P_UDP || c->sport[i] < 0)
        return 0;
    int m = udp_meaning((unsigned)c->sport[i], (unsigned)c->dport[i]);
    if (m == -E_WIREGUARD)
        return E_WIREGUARD;
    /* A zero "non-ESP marker" is IKE, a single 0xff byte a NAT keep-alive: not ESP. */
    if (m == -E_ESP_IN_UDP && k->l4 + 8 + 4 <= k->end && rd32(s, k->l4 + 8) != 0)
        return E_ESP_IN_UDP;
    return 0;
}

/* ---- the loop ---- */

/* decode.CORE's 'absent' values for packet i (Python hands over np.empty columns:
 * writing them here, row by row, saves a separate pass over every column). */
static void absent(const cols_t *c, Py_ssize_t i)
{
    c->ifindex[i] = -1;
    c->unknown_link[i] = c->ip[i] = c->tcp[i] = c->hlen[i] = c->q_ip[i] = 0;
    c->src_hi[i] = c->src_lo[i] = c->dst_hi[i] = c->dst_lo[i] = 0;
    c->q_src_hi[i] = c->q_src_lo[i] = c->q_dst_hi[i] = c->q_dst_lo[i] = 0;
    c->ttl[i] = c->proto[i] = c->tls_hs[i] = c->tls_alert[i] = -1;
    c->icmp_type[i] = c->icmp_code[i] = c->q_proto[i] = -1;
    c->sport[i] = c->dport[i] = c->seglen[i] = c->q_sport[i] = c->q_dport[i] = -1;
    c->flags[i] = c->win[i] = 0;
    c->seq[i] = c->ack[i] = 0;
    c->q_seq[i] = -1;
    c->tunnel[i] = c->encrypted[i] = c->outer_ip[i] = 0;
    c->outer_src_hi[i] = c->outer_src_lo[i] = c->outer_dst_hi[i] = c->outer_dst_lo[i] = 0;
    c->vni[i] = NO_VNI;
}

static void packet(src_t *s, const cols_t *c, const batch_t *b, Py_ssize_t i)
{
    absent(c, i);
    int64_t off = b->offset[i];
    pkt_t k = {wadd(off, b->caplen[i]), wadd(off, b->origlen[i]), -1, 0, -1, 0, -1};
    if (off < 0 || off > b->len) { /* numpy would wrap or raise: keep positions small */
        s->bad = 1;
        return;
    }
    link_layer(s, c, i, off, b->linktype[i], &k);
    if (k.version == VERSION_ASK)
        k.version = ask_version(s, k.pos);
    network(s, c, i, &k);
    tunnels(s, c, i, &k);
    if (k.l4 < 0)
        return;
    if (k.proto == P_TCP)
        tcp(s, c, i, &k);
    else if (k.proto == P_UDP)
        udp(s, c, i, &k);
    else if (k.proto == P_ICMP || k.proto == P_ICMPV6)
        icmp(s, c, i, &k, k.proto == P_ICMPV6);
    c->encrypted[i] = (uint8_t)encrypted(s, c, i, &k);
}

/* Packets are a few hundred bytes apart: without fetching the headers of a
 * later packet ahead, each one waits for its first cache miss (4x slower).
 * The hint stays in the loop: GCC 12 dropped it from a helper function. */
#define PREFETCH_AHEAD 16

/* 1: decoded; 0: a read would leave `data` (the numpy code must decide). */
static int run(const batch_t *b, const cols_t *c)
{
    src_t s = {b->data, b->len, 0};
    if (b->len < 8) /* numpy's 8-byte views of `data` raise ValueError, whatever the records */
        return 0;
    for (Py_ssize_t i = 0; i < b->n; i++) {
        if (i + PREFETCH_AHEAD < b->n) { /* a hint: never faults, whatever the offset */
            uintptr_t at = (uintptr_t)b->data + (uintptr_t)b->offset[i + PREFETCH_AHEAD];
            __builtin_prefetch((const void *)at);
            __builtin_prefetch((const void *)(at + 64));
        }
        packet(&s, c, b, i);
        if (s.bad)
            return 0;
    }
    return 1;
}

/* ---- Python entry point ---- */

static void bind_columns(cols_t *c, np_buf *o)
{
    c->ifindex = NP_PTR(o[C_IFINDEX], int64_t);
    c->unknown_link = NP_PTR(o[C_UNKNOWN], uint8_t);
    c->ip = NP_PTR(o[C_IP], uint8_t);
    c->src_hi = NP_PTR(o[C_SRC_HI], uint64_t);
    c->src_lo = NP_PTR(o[C_SRC_LO], uint64_t);
    c->dst_hi = NP_PTR(o[C_DST_HI], uint64_t);
    c->dst_lo = NP_PTR(o[C_DST_LO], uint64_t);
    c->ttl = NP_PTR(o[C_TTL], int16_t);
    c->proto = NP_PTR(o[C_PROTO], int16_t);
    c->sport = NP_PTR(o[C_SPORT], int32_t);
    c->dport = NP_PTR(o[C_DPORT], int32_t);
    c->tcp = NP_PTR(o[C_TCP], uint8_t);
    c->flags = NP_PTR(o[C_FLAGS], uint16_t);
    c->seq = NP_PTR(o[C_SEQ], uint32_t);
    c->ack = NP_PTR(o[C_ACK], uint32_t);
    c->win = NP_PTR(o[C_WIN], uint16_t);
    c->hlen = NP_PTR(o[C_HLEN], uint8_t);
    c->seglen = NP_PTR(o[C_SEGLEN], int32_t);
    c->tls_hs = NP_PTR(o[C_TLS_HS], int16_t);
    c->tls_alert = NP_PTR(o[C_TLS_ALERT], int16_t);
    c->icmp_type = NP_PTR(o[C_ICMP_TYPE], int16_t);
    c->icmp_code = NP_PTR(o[C_ICMP_CODE], int16_t);
    c->q_ip = NP_PTR(o[C_Q_IP], uint8_t);
    c->q_src_hi = NP_PTR(o[C_Q_SRC_HI], uint64_t);
    c->q_src_lo = NP_PTR(o[C_Q_SRC_LO], uint64_t);
    c->q_dst_hi = NP_PTR(o[C_Q_DST_HI], uint64_t);
    c->q_dst_lo = NP_PTR(o[C_Q_DST_LO], uint64_t);
    c->q_proto = NP_PTR(o[C_Q_PROTO], int16_t);
    c->q_sport = NP_PTR(o[C_Q_SPORT], int32_t);
    c->q_dport = NP_PTR(o[C_Q_DPORT], int32_t);
    c->q_seq = NP_PTR(o[C_Q_SEQ], int64_t);
    c->tunnel = NP_PTR(o[C_TUNNEL], uint8_t);
    c->encrypted = NP_PTR(o[C_ENCRYPTED], uint8_t);
    c->outer_ip = NP_PTR(o[C_OUTER_IP], uint8_t);
    c->outer_src_hi = NP_PTR(o[C_OUTER_SRC_HI], uint64_t);
    c->outer_src_lo = NP_PTR(o[C_OUTER_SRC_LO], uint64_t);
    c->outer_dst_hi = NP_PTR(o[C_OUTER_DST_HI], uint64_t);
    c->outer_dst_lo = NP_PTR(o[C_OUTER_DST_LO], uint64_t);
    c->vni = NP_PTR(o[C_VNI], int64_t);
}

static int overlaps(const np_buf *a, const np_buf *b)
{
    const char *a0 = a->view.buf, *b0 = b->view.buf;
    return a->view.len > 0 && b->view.len > 0 && a0 < b0 + b->view.len && b0 < a0 + a->view.len;
}

/* The columns are written while the inputs are read: they must not share memory. */
static int check_overlap(const np_buf *in, int n_in, const np_buf *out)
{
    for (int k = 0; k < NCOLS; k++) {
        for (int j = 0; j < n_in; j++)
            if (overlaps(&out[k], &in[j]))
                goto overlap;
        for (int j = 0; j < k; j++)
            if (overlaps(&out[k], &out[j]))
                goto overlap;
    }
    return 0;
overlap:
    PyErr_SetString(PyExc_ValueError, "columns overlap each other or the inputs");
    return -1;
}

PyDoc_STRVAR(decode_doc,
"decode(data, offset, caplen, origlen, linktype, cols) -> bool\n\n"
"Decode the packets of a Batch (data uint8, ending with records.PAD zero\n"
"bytes; offset, caplen, origlen int64 and linktype int32 arrays of n) into\n"
"`cols`, the CORE columns of decode.empty(n, detail=False) at their absent\n"
"values. Writes every column but time, interface and frame_len, exactly as\n"
"netprobe.capture.decode.decode(batch, detail=False). Returns False, with\n"
"`cols` partly written, when a record reaches so far past the end of\n"
"`data` that the numpy code might raise: run the numpy code then.");

static PyObject *decode(PyObject *self, PyObject *args)
{
    enum { I_DATA, I_OFFSET, I_CAPLEN, I_ORIGLEN, I_LINKTYPE, N_IN };
    PyObject *obj[N_IN], *cols, *result = NULL;
    np_buf in[N_IN], out[NCOLS];
    batch_t b;
    cols_t c;
    int ok = 0;
    (void)self;
    for (int k = 0; k < N_IN; k++)
        in[k].held = 0;
    for (int k = 0; k < NCOLS; k++)
        out[k].held = 0;
    if (!PyArg_ParseTuple(args, "OOOOOO!", &obj[0], &obj[1], &obj[2], &obj[3], &obj[4],
                          &PyDict_Type, &cols))
        return NULL;
    if (np_get(obj[I_DATA], &in[I_DATA], 1, -1, 0, "data") < 0
        || np_get(obj[I_OFFSET], &in[I_OFFSET], 8, -1, 0, "offset") < 0)
        goto done;
    Py_ssize_t n = NP_LEN(in[I_OFFSET]);
    if (np_get(obj[I_CAPLEN], &in[I_CAPLEN], 8, n, 0, "caplen") < 0
        || np_get(obj[I_ORIGLEN], &in[I_ORIGLEN], 8, n, 0, "origlen") < 0
        || np_get(obj[I_LINKTYPE], &in[I_LINKTYPE], 4, n, 0, "linktype") < 0)
        goto done;
    for (int k = 0; k < NCOLS; k++)
        if (np_get_col(cols, COL_NAMES[k], &out[k], COL_SIZES[k], n, 1) < 0)
            goto done;
    if (check_overlap(in, N_IN, out) < 0)
        goto done;
    b.data = NP_PTR(in[I_DATA], const uint8_t);
    b.len = (int64_t)in[I_DATA].view.len;
    b.n = n;
    b.offset = NP_PTR(in[I_OFFSET], const int64_t);
    b.caplen = NP_PTR(in[I_CAPLEN], const int64_t);
    b.origlen = NP_PTR(in[I_ORIGLEN], const int64_t);
    b.linktype = NP_PTR(in[I_LINKTYPE], const int32_t);
    bind_columns(&c, out);
    Py_BEGIN_ALLOW_THREADS
    ok = run(&b, &c);
    Py_END_ALLOW_THREADS
    result = PyBool_FromLong(ok);
done:
    for (int k = 0; k < N_IN; k++)
        np_release(&in[k]);
    for (int k = 0; k < NCOLS; k++)
        np_release(&out[k]);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "netprobe._native.decode",
    "Packet decoding of a Batch into the CORE columns "
    "(mirrors netprobe.capture.decode.decode with detail=False).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit_decode(void) { return PyModule_Create(&module); }
