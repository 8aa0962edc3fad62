/* Optional C accelerator for scanguard_ids.eve.decode (built by setup.py when a compiler is
 * there; without it decode.py does everything itself, slower).
 *
 *   prefilter(buf, start, end, max_line, sids=None, ctx=None)
 *       The byte check of Decoder.decode_batch over a whole buffer of EVE lines, without
 *       making a Python object per line: only the lines the check cannot settle come back.
 *       With sids, our alerts come back already read by head(), foreign ones only counted;
 *       with ctx, the common ones come back as finished events, as Decoder._event() makes.
 *   prefilter_lines(lines, max_line, sids=None, ctx=None)
 *       The same over a list of lines (the live daemon's batches).
 *   head(line) -> tuple | None
 *       The fields the decoder needs, read from the layout Suricata 7 writes for an alert
 *       (its key order, ASCII, compact), after checking that the rest of the line is JSON
 *       that repeats none of those keys; None for anything else: the caller then takes the
 *       full parse (orjson), which stays the reference.
 *
 * The tests (tests/eve/test_fast_reader.py) compare both paths on generated lines, mutated
 * lines and real Suricata output; tests/eve/test_fast_scan_edges.py sweeps the 16-byte scans
 * below position by position. Every read is bounds-checked against the line. Where the
 * time goes is measured by bench/ (the alerts and mixed corpora), not written here.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define INLINE static inline __attribute__((always_inline))

/* memcmp(a, b, n) == 0 for the short constant n of a key or literal, compiled inline (a
 * call to the library's memcmp costs more than the comparison). */
INLINE int
same(const char *a, const char *b, size_t n)
{
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        if (x != y)
            return 0;
    }
    if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, a, 4);
        memcpy(&y, b, 4);
        if (x != y)
            return 0;
        a += 4, b += 4, n -= 4;
    }
    for (; n > 0; n--)
        if (*a++ != *b++)
            return 0;
    return 1;
}

static const char ET_KEY[] = "\"event_type\"";
#define ET_LEN 12

/* kinds[i] of a candidate line */
#define KIND_OTHER 0 /* the full Decoder._decode path */
#define KIND_ALERT 1 /* its first "event_type" is a compact "alert": Decoder._alert */

/* memmem(s, e - s, ET_KEY, ET_LEN): where a '"' is followed by an 'e', the rest is compared. */
static const char *
find_et(const char *s, const char *e)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), letter = _mm_set1_epi8('e');
    for (; e - s >= 17; s += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)s);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(s + 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(
            _mm_and_si128(_mm_cmpeq_epi8(a, quote), _mm_cmpeq_epi8(b, letter)));
        for (; mask; mask &= mask - 1) {
            const char *q = s + __builtin_ctz(mask);
            if (e - q >= ET_LEN && same(q, ET_KEY, ET_LEN))
                return q;
        }
    }
#endif
    return e - s >= ET_LEN ? memmem(s, (size_t)(e - s), ET_KEY, ET_LEN) : NULL;
}

/* 1: settled (another event type, skip it); 0: unsettled, *kind tells which path. */
static int
settled(const char *s, Py_ssize_t n, char *kind)
{
    const char *end = s + n;
    const char *p = find_et(s, end);
    *kind = KIND_OTHER;
    if (p == NULL)
        return 0;
    const char *v = p + ET_LEN;
    if (end - v < 2 || v[0] != ':' || v[1] != '"')
        return 0;
    v += 2;
    if (end - v >= 6 && same(v, "alert\"", 6)) {
        *kind = KIND_ALERT;
        return 0;
    }
    if (v < end && *v == '\\')
        return 0;
    return find_et(v, end) == NULL;
}

/* One alert line as parse_head() reads it: pointers into the line (ASCII text, checked),
 * -1 for a number that is absent. */
typedef struct {
    double ts;
    const char *src, *dst, *proto, *sensor; /* sensor NULL: neither host nor in_iface */
    Py_ssize_t src_n, dst_n, proto_n, sensor_n;
    long long sport, itype, icode, sid;
    int qproto, qport; /* an ICMP error's quoted probe; -1: none */
    Py_ssize_t qsrc_n;
    unsigned char qsrc[16]; /* the probe's packed source address */
} Head;

static int parse_head(const char *line, Py_ssize_t n, Head *h);
static PyObject *head_tuple(const Head *h, PyObject *sid, PyObject *src, PyObject *dst);
static PyObject *TCP, *ICMP, *ICMP6; /* interned protocol names, set at import */

#define KIND_EVENT 3 /* the item is the finished ResponseEvent */

/* -- making ResponseEvents ------------------------------------------------------------ */

/* model.ResponseEvent is a slots dataclass whose __init__ only stores its eight fields, in
 * this order. Calling it costs more than reading a line here, so when the class is exactly
 * that (checked once per class: __dataclass_fields__, no __post_init__, each field a
 * writable object slot) the event is allocated and its slots filled directly, as __init__
 * would; otherwise it is called. The tests compare such events with Python-made ones. */
static const char *const EVENT_FIELDS[8] = {
    "ts", "remote", "local", "local_port", "proto", "kind", "sid", "sensor",
};
static PyTypeObject *event_type; /* the class the offsets belong to (borrowed: a module global) */
static Py_ssize_t event_offsets[8];
static int event_direct; /* 1: fill the slots, 0: call the class */

static void
prepare_event(PyObject *cls)
{
    event_type = (PyTypeObject *)cls;
    event_direct = 0;
    if (!PyType_Check(cls) || PyObject_HasAttrString(cls, "__post_init__"))
        return;
    PyObject *fields = PyObject_GetAttrString(cls, "__dataclass_fields__");
    if (fields == NULL) {
        PyErr_Clear();
        return;
    }
    int ok = PyDict_Check(fields) && PyDict_GET_SIZE(fields) == 8;
    Py_ssize_t pos = 0, i = 0;
    PyObject *key, *value;
    while (ok && PyDict_Next(fields, &pos, &key, &value)) {
        ok = PyUnicode_Check(key) && PyUnicode_CompareWithASCIIString(key, EVENT_FIELDS[i]) == 0;
        PyObject *d = ok ? PyObject_GetAttr(cls, key) : NULL;
        if (d == NULL) {
            PyErr_Clear();
            ok = 0;
            break;
        }
        PyMemberDef *m = Py_IS_TYPE(d, &PyMemberDescr_Type) ? ((PyMemberDescrObject *)d)->d_member
                                                            : NULL;
        ok = m != NULL && m->type == T_OBJECT_EX && !(m->flags & READONLY);
        if (ok)
            event_offsets[i++] = m->offset;
        Py_DECREF(d);
    }
    Py_DECREF(fields);
    event_direct = ok && i == 8;
}

static PyObject *
new_event(PyObject *cls, PyObject *const *args)
{
    if ((PyTypeObject *)cls != event_type)
        prepare_event(cls);
    if (!event_direct)
        return PyObject_Vectorcall(cls, args, 8, NULL);
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *ev = tp->tp_alloc(tp, 0);
    if (ev == NULL)
        return NULL;
    for (int i = 0; i < 8; i++)
        *(PyObject **)((char *)ev + event_offsets[i]) = Py_NewRef(args[i]);
    return ev;
}

/* -- Python objects for the fields, reused where they repeat -------------------------- */

/* An ASCII string (parse_head() lets no other byte through). */
static PyObject *
ascii_str(const char *s, Py_ssize_t n)
{
    PyObject *o = PyUnicode_New(n, 127);
    if (o != NULL)
        memcpy(PyUnicode_DATA(o), s, (size_t)n);
    return o;
}

/* Addresses and sensor names repeat from line to line: the last string made for each of
 * STR_SLOTS hash slots is kept and handed out again when the same text comes back. */
#define STR_SLOTS 1024
#define STR_CACHED_MAX 64 /* longer texts are made each time */
static PyObject *str_slots[STR_SLOTS];

static PyObject *
text(const char *s, Py_ssize_t n)
{
    if (n > STR_CACHED_MAX)
        return ascii_str(s, n);
    uint64_t a = 0, b = 0, h;
    if (n >= 8) { /* the first and the last 8 bytes (overlapping when n < 16) */
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
    }
    else
        for (Py_ssize_t i = 0; i < n; i++)
            a = a << 8 | (unsigned char)s[i];
    h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ (uint64_t)n;
    PyObject **slot = &str_slots[(h ^ (h >> 29) ^ (h >> 47)) & (STR_SLOTS - 1)];
    PyObject *o = *slot;
    if (o != NULL && PyUnicode_GET_LENGTH(o) == n && same(PyUnicode_DATA(o), s, (size_t)n))
        return Py_NewRef(o);
    if ((o = ascii_str(s, n)) != NULL)
        Py_XSETREF(*slot, Py_NewRef(o));
    return o;
}

/* A number parse_head() read (None for -1). */
static PyObject *
number(long long v)
{
    return v >= 0 ? PyLong_FromLongLong(v) : Py_NewRef(Py_None);
}

/* The SID as an int: the same object while the SID repeats. */
static PyObject *last_sid;
static long long last_sid_value = -1;

static PyObject *
sid_int(long long v)
{
    if (last_sid != NULL && last_sid_value == v)
        return Py_NewRef(last_sid);
    PyObject *o = PyLong_FromLongLong(v);
    if (o != NULL) {
        Py_XSETREF(last_sid, Py_NewRef(o));
        last_sid_value = v;
    }
    return o;
}

static PyObject *
proto_str(const char *s, Py_ssize_t n)
{
    if (n == 3 && same(s, "TCP", 3))
        return Py_NewRef(TCP);
    if (n == 4 && same(s, "ICMP", 4))
        return Py_NewRef(ICMP);
    if (n == 9 && same(s, "IPv6-ICMP", 9))
        return Py_NewRef(ICMP6);
    return ascii_str(s, n);
}

static PyObject *
sensor_str(const Head *h)
{
    return h->sensor != NULL ? text(h->sensor, h->sensor_n) : PyUnicode_FromStringAndSize("", 0);
}

/* A canonical dotted quad (what ipaddress prints: no leading zeros, each part <= 255). */
static int
ipv4_canon(const char *p, Py_ssize_t n, unsigned char *packed)
{
    const char *e = p + n;
    for (int i = 0; i < 4; i++) {
        const char *d = p;
        int v = 0;
        while (p < e && *p >= '0' && *p <= '9' && p - d < 3)
            v = v * 10 + (*p++ - '0');
        if (p == d || (p - d > 1 && *d == '0') || v > 255)
            return 0;
        packed[i] = (unsigned char)v;
        if (i < 3 && (p >= e || *p++ != '.'))
            return 0;
    }
    return p == e;
}

/* (canonical text, packed) of an address as parse_head() read it (text: its string): IPv4
 * here, IPv6 from the decoder's cache (decode.py's _addr() fills it). 0: not known here.
 * Borrowed canon. */
static int
address(PyObject *addrs, const char *s, Py_ssize_t n, PyObject *str, PyObject **canon,
        const unsigned char **packed, Py_ssize_t *packed_n, unsigned char *v4)
{
    if (ipv4_canon(s, n, v4)) {
        *canon = str, *packed = v4, *packed_n = 4;
        return 1;
    }
    PyObject *hit = PyDict_GetItemWithError(addrs, str);
    if (hit == NULL || !PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2 ||
        !PyBytes_Check(PyTuple_GET_ITEM(hit, 1)))
        return PyErr_Occurred() ? -1 : 0;
    *canon = PyTuple_GET_ITEM(hit, 0);
    *packed = (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(hit, 1));
    *packed_n = PyBytes_GET_SIZE(PyTuple_GET_ITEM(hit, 1));
    return 1;
}

/* What decode.py's Decoder._event() builds from head_tuple(h, sid) -- for the common case
 * only: both addresses IPv4 or already in the decoder's cache, a TCP RST or an ICMP(v6) port
 * unreachable. ctx = (addrs, ResponseEvent, (TCP_RST, ICMP4, ICMP6), ("tcp",
 * PORT_PROTOCOLS)); src and dst: the strings of h's addresses. Returns a new reference to
 * the event, None (new reference) for "let _event() do it", NULL on error; counts[0..2] +=
 * alerts, no_port, remote_mismatch as _event() would count them. */
static PyObject *
event(PyObject *ctx, const Head *h, PyObject *sid, PyObject *src_str, PyObject *dst_str,
      Py_ssize_t *counts)
{
    PyObject *addrs = PyTuple_GET_ITEM(ctx, 0), *make = PyTuple_GET_ITEM(ctx, 1);
    PyObject *kinds = PyTuple_GET_ITEM(ctx, 2), *names = PyTuple_GET_ITEM(ctx, 3);
    PyObject *src, *dst;
    const unsigned char *src_pk, *dst_pk;
    Py_ssize_t src_n, dst_n;
    unsigned char v4s[4], v4d[4];
    int r = address(addrs, h->src, h->src_n, src_str, &src, &src_pk, &src_n, v4s);
    if (r == 1)
        r = address(addrs, h->dst, h->dst_n, dst_str, &dst, &dst_pk, &dst_n, v4d);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *kind, *name, *port;
    int no_port = 0, mismatch = 0;
    if (h->proto_n == 3 && same(h->proto, "TCP", 3)) {
        kind = PyTuple_GET_ITEM(kinds, 0);
        name = PyTuple_GET_ITEM(names, 0);
        port = number(h->sport <= 0xFFFF ? h->sport : -1);
        no_port = port == Py_None;
    }
    else {
        int icmp4 = h->proto_n == 4 && same(h->proto, "ICMP", 4);
        int icmp6 = h->proto_n == 9 && same(h->proto, "IPv6-ICMP", 9);
        if (icmp4 && h->itype == 3 && h->icode == 3)
            kind = PyTuple_GET_ITEM(kinds, 1);
        else if (icmp6 && h->itype == 1 && h->icode == 4)
            kind = PyTuple_GET_ITEM(kinds, 2);
        else
            return Py_NewRef(Py_None); /* unknown_kind: counted by _event() */
        if (h->qproto < 0)
            return Py_NewRef(Py_None);
        PyObject *qproto = PyLong_FromLong(h->qproto);
        if (qproto == NULL)
            return NULL;
        name = PyDict_GetItemWithError(PyTuple_GET_ITEM(names, 1), qproto);
        Py_DECREF(qproto);
        if (name == NULL)
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        if ((port = number(h->qport)) == NULL)
            return NULL;
        mismatch = h->qsrc_n != dst_n || memcmp(h->qsrc, dst_pk, (size_t)dst_n) != 0;
    }
    if (port == NULL)
        return NULL;
    PyObject *ts = PyFloat_FromDouble(h->ts), *sensor = sensor_str(h), *ev = NULL;
    if (ts != NULL && sensor != NULL) {
        PyObject *args[8] = {ts, dst, src, port, name, kind, sid, sensor};
        ev = new_event(make, args);
    }
    Py_XDECREF(ts);
    Py_XDECREF(sensor);
    Py_DECREF(port);
    if (ev != NULL) {
        counts[0]++;
        counts[1] += no_port;
        counts[2] += mismatch;
    }
    return ev;
}

#define KIND_FIELDS 2 /* an alert of ours already read: the item is head_tuple()'s tuple */

static int
append(PyObject *items, PyObject *kinds, PyObject *item, char kind)
{
    int rc = PyList_Append(items, item);
    Py_DECREF(item);
    if (rc < 0)
        return -1;
    Py_ssize_t k = PyByteArray_GET_SIZE(kinds);
    if (PyByteArray_Resize(kinds, k + 1) < 0)
        return -1;
    PyByteArray_AS_STRING(kinds)[k] = kind;
    return 0;
}

/* What one prefilter call gathers. */
typedef struct {
    Py_ssize_t max_line;
    PyObject *sids, *ctx; /* borrowed; Py_None when not given */
    Py_ssize_t lines, skipped, foreign, counts[3];
    PyObject *items, *kinds;
} Scan;

static int
scan_init(Scan *sc, Py_ssize_t max_line, PyObject *sids, PyObject *ctx)
{
    memset(sc, 0, sizeof(*sc));
    sc->max_line = max_line, sc->sids = sids, sc->ctx = ctx;
    if ((sids != Py_None && !PyAnySet_Check(sids)) ||
        (ctx != Py_None &&
         !(PyTuple_CheckExact(ctx) && PyTuple_GET_SIZE(ctx) == 4 &&
           PyDict_CheckExact(PyTuple_GET_ITEM(ctx, 0)) &&
           PyTuple_CheckExact(PyTuple_GET_ITEM(ctx, 2)) &&
           PyTuple_GET_SIZE(PyTuple_GET_ITEM(ctx, 2)) == 3 &&
           PyTuple_CheckExact(PyTuple_GET_ITEM(ctx, 3)) &&
           PyTuple_GET_SIZE(PyTuple_GET_ITEM(ctx, 3)) == 2 &&
           PyDict_CheckExact(PyTuple_GET_ITEM(PyTuple_GET_ITEM(ctx, 3), 1))))) {
        PyErr_SetString(PyExc_ValueError, "prefilter: bad sids or ctx");
        return -1;
    }
    sc->items = PyList_New(0);
    sc->kinds = PyByteArray_FromStringAndSize(NULL, 0);
    return sc->items && sc->kinds ? 0 : -1;
}

static PyObject *
scan_result(Scan *sc)
{
    return Py_BuildValue("nnnNN(nnn)", sc->lines, sc->skipped, sc->foreign, sc->items, sc->kinds,
                         sc->counts[0], sc->counts[1], sc->counts[2]);
}

/* An alert line of ours: the event (kind 3) when event() can make it, else head_tuple()'s
 * tuple (kind 2). */
static int
ours(Scan *sc, const Head *h, PyObject *sid)
{
    PyObject *src = text(h->src, h->src_n), *dst = src ? text(h->dst, h->dst_n) : NULL;
    PyObject *item = NULL;
    char kind = KIND_EVENT;
    if (dst != NULL && sc->ctx != Py_None) {
        item = event(sc->ctx, h, sid, src, dst, sc->counts);
        if (item == Py_None)
            Py_CLEAR(item);
        else if (item == NULL)
            goto done;
    }
    if (item == NULL && dst != NULL) {
        kind = KIND_FIELDS;
        item = head_tuple(h, sid, src, dst);
    }
done:
    Py_XDECREF(src);
    Py_XDECREF(dst);
    return item != NULL ? append(sc->items, sc->kinds, item, kind) : -1;
}

/* One line: settled lines are only counted; the rest become items. ``obj`` is the line as a
 * bytes object when the caller has one (reused), else NULL (one is made if needed). */
static int
scan_line(Scan *sc, const char *line, Py_ssize_t len, PyObject *obj)
{
    char kind = KIND_OTHER;
    sc->lines++;
    if (len > sc->max_line) {
        kind = KIND_OTHER; /* _decode counts it as oversized */
    }
    else if (settled(line, len, &kind)) {
        sc->skipped++;
        return 0;
    }
    else if (kind == KIND_ALERT && sc->sids != Py_None) {
        Head h;
        if (parse_head(line, len, &h)) {
            PyObject *sid = sid_int(h.sid);
            if (sid == NULL)
                return -1;
            int rc = PySet_Contains(sc->sids, sid);
            if (rc > 0)
                rc = ours(sc, &h, sid);
            else if (rc == 0)
                sc->foreign++;
            Py_DECREF(sid);
            return rc < 0 ? -1 : 0;
        }
    }
    PyObject *bytes = obj ? Py_NewRef(obj) : PyBytes_FromStringAndSize(line, len);
    if (bytes == NULL)
        return -1;
    return append(sc->items, sc->kinds, bytes, kind);
}

/* prefilter(buf, start, end, max_line, sids=None, ctx=None)
 *     -> (lines, skipped, foreign, items, kinds, (alerts, no_port, remote_mismatch))
 * The newline-separated lines of buf[start:end] (a newline at the very end starts no line).
 * sids None: items are the unsettled lines (kinds 0/1). A set of ints: compact alerts are
 * also read here; ours come back as head() tuples (kind 2), foreign ones are only
 * counted, and a line parse_head() does not recognise comes back as bytes (kind 1). With ctx
 * (see event()), most of ours come back as finished ResponseEvents (kind 3), counted in the
 * last tuple. */
static PyObject *
prefilter(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, stop, max_line;
    PyObject *sids = Py_None, *ctx = Py_None;
    Scan sc;
    if (!PyArg_ParseTuple(args, "y*nnn|OO", &view, &start, &stop, &max_line, &sids, &ctx))
        return NULL;
    if (start < 0 || stop > view.len || start > stop) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "prefilter: bad start/end");
        return NULL;
    }
    if (scan_init(&sc, max_line, sids, ctx) < 0)
        goto fail;
    const char *buf = (const char *)view.buf;
    Py_ssize_t pos = start;
    while (pos < stop) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(stop - pos));
        Py_ssize_t eol = nl ? (Py_ssize_t)(nl - buf) : stop;
        if (scan_line(&sc, buf + pos, eol - pos, NULL) < 0)
            goto fail;
        pos = eol + 1;
    }
    PyBuffer_Release(&view);
    return scan_result(&sc);
fail:
    PyBuffer_Release(&view);
    Py_XDECREF(sc.items);
    Py_XDECREF(sc.kinds);
    return NULL;
}

/* prefilter_lines(lines, max_line, sids=None, ctx=None): prefilter() on a list of lines
 * (bytes objects, one line each, as decode_batch takes them); unsettled lines come back as
 * the same objects. */
static PyObject *
prefilter_lines(PyObject *self, PyObject *args)
{
    PyObject *list, *sids = Py_None, *ctx = Py_None;
    Py_ssize_t max_line;
    Scan sc;
    if (!PyArg_ParseTuple(args, "O!n|OO", &PyList_Type, &list, &max_line, &sids, &ctx))
        return NULL;
    if (scan_init(&sc, max_line, sids, ctx) < 0)
        goto fail;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++) {
        PyObject *line = PyList_GET_ITEM(list, i);
        if (!PyBytes_Check(line)) {
            PyErr_SetString(PyExc_TypeError, "prefilter_lines: a list of bytes expected");
            goto fail;
        }
        Py_INCREF(line); /* the list may change under Python code that event() runs */
        int rc = scan_line(&sc, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line), line);
        Py_DECREF(line);
        if (rc < 0)
            goto fail;
    }
    return scan_result(&sc);
fail:
    Py_XDECREF(sc.items);
    Py_XDECREF(sc.kinds);
    return NULL;
}

/* -- scanning string bodies ------------------------------------------------------------ */

#if !defined(__SSE2__)
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* None of the 8 bytes needs a look: no quote, backslash, control character or non-ASCII. */
static inline int
plain8(const char *p)
{
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    q = x ^ (ONES * '"');
    b = x ^ (ONES * '\\');
    return !((x | ((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS);
}

#endif

/* A byte a JSON string body passes as is (not a quote, backslash, control character or
 * non-ASCII byte). */
INLINE int
plain(unsigned char ch)
{
    return ch >= 0x20 && ch < 0x80 && ch != '"' && ch != '\\';
}

/* The first byte from p on that is not plain(), or end. */
INLINE const char *
skip_plain(const char *p, const char *end)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    while (end - p >= 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed: bytes >= 0x80 are negative, so below 0x20 too */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, bslash)),
                                 _mm_cmplt_epi8(x, space));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);
        if (mask)
            return p + __builtin_ctz(mask);
        p += 16;
    }
#else
    while (end - p >= 8 && plain8(p))
        p += 8;
#endif
    while (p < end && plain((unsigned char)*p))
        p++;
    return p;
}

/* -- head(): a cursor over one line ------------------------------------------------------ */

typedef struct {
    const char *p;
    const char *end;
} Cur;

INLINE int
lit(Cur *c, const char *s, Py_ssize_t n)
{
    if (c->end - c->p < n || !same(c->p, s, (size_t)n))
        return 0;
    c->p += n;
    return 1;
}
#define LIT(c, s) lit((c), (s), (Py_ssize_t)(sizeof(s) - 1))

/* A JSON non-negative integer without leading zeros, at most 18 digits. */
INLINE int
uint_(Cur *c, long long *out)
{
    const char *p = c->p;
    long long v = 0;
    int n = 0;
    while (p < c->end && *p >= '0' && *p <= '9') {
        if (++n > 18)
            return 0; /* would overflow, and a 64-bit JSON parser may refuse it */
        v = v * 10 + (*p++ - '0');
    }
    if (n == 0 || (n > 1 && c->p[0] == '0'))
        return 0;
    c->p = p;
    *out = v;
    return 1;
}

/* char_class[byte]: CLASS_PLAIN for what a JSON string holds as is (not a quote, backslash,
 * control character or non-ASCII), CLASS_IP for what an address is written with (hex
 * digits, '.' and ':'); filled at import. */
#define CLASS_PLAIN 1
#define CLASS_IP 2
static unsigned char char_class[256];

static void
fill_char_class(void)
{
    for (int ch = 0x20; ch < 0x80; ch++) {
        if (ch == '"' || ch == '\\')
            continue;
        char_class[ch] = CLASS_PLAIN;
        if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
            ch == '.' || ch == ':')
            char_class[ch] |= CLASS_IP;
    }
}

/* A string body up to its closing quote, without escapes or control characters.
 * ip: only the characters of an IPv4/IPv6 address. */
INLINE int
str_(Cur *c, const char **s, Py_ssize_t *n, int ip)
{
    const char *p = c->p;
    /* escapes and non-ASCII text: the full parse reads them */
    if (ip)
        while (p < c->end && (char_class[(unsigned char)*p] & CLASS_IP))
            p++;
    else
        p = skip_plain(p, c->end);
    if (p >= c->end || *p != '"')
        return 0;
    *s = c->p;
    *n = p - c->p;
    c->p = p + 1;
    return 1;
}

/* Optional "key":<uint>, ; returns 1 when present (and parsed), 0 when absent, -1 on error. */
INLINE int
opt_uint(Cur *c, const char *key, Py_ssize_t klen, long long *out)
{
    if (c->end - c->p < klen || !same(c->p, key, (size_t)klen))
        return 0;
    c->p += klen;
    if (!uint_(c, out) || !LIT(c, ","))
        return -1;
    return 1;
}
#define OPT_UINT(c, key, out) opt_uint((c), (key), (Py_ssize_t)(sizeof(key) - 1), (out))

INLINE int
digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return 1;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long long
days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    int yoe = (int)(y - era * 400);
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* Suricata's "YYYY-MM-DDTHH:MM:SS.ffffff+hhmm" (fraction optional) -> epoch seconds,
 * rounded exactly like datetime.timestamp(): integer microseconds / 1e6. */
static int
ts_(const char *s, Py_ssize_t n, double *out)
{
    int y, mo, d, h, mi, se, us = 0, oh, om;
    if (n != 24 && n != 31)
        return 0;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return 0;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &se))
        return 0;
    const char *z = s + 19;
    if (n == 31) {
        if (*z != '.' || !digits(z + 1, 6, &us))
            return 0;
        z += 7;
    }
    if ((*z != '+' && *z != '-') || !digits(z + 1, 2, &oh) || !digits(z + 3, 2, &om))
        return 0;
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] + (mo == 2 && leap) ||
        h > 23 || mi > 59 || se > 59 || oh > 23 || om > 59)
        return 0;
    long long off = (long long)(oh * 3600 + om * 60) * (*z == '-' ? -1 : 1);
    long long secs = days_from_civil(y, mo, d) * 86400LL + h * 3600 + mi * 60 + se - off;
    long long total = secs * 1000000LL + us;
    if (total >= (1LL << 53) || total <= -(1LL << 53))
        return 0; /* not exact in a double: datetime's own rounding applies */
    *out = (double)total / 1e6;
    return 1;
}

/* -- the rest of an alert line, validated as JSON --------------------------------------- */

#define MAX_DEPTH 64

typedef struct {
    const char *host, *payload; /* top-level string values, NULL when absent */
    Py_ssize_t host_n, payload_n;
    int seen; /* 1: "host" seen, 2: "payload" seen (as bits) */
    int payload_escaped;
} Rest;

/* Top-level keys the head already read: a second copy would win in a JSON parser. */
static int
read_key(const char *k, Py_ssize_t n)
{
#define IS(name) (n == (Py_ssize_t)sizeof(name) - 1 && same(k, name, sizeof(name) - 1))
    switch (n ? k[0] : 0) {
    case 't':
        return IS("timestamp");
    case 'i':
        return IS("in_iface") || IS("icmp_type") || IS("icmp_code");
    case 'e':
        return IS("event_type");
    case 's':
        return IS("src_ip") || IS("src_port");
    case 'd':
        return IS("dest_ip");
    case 'p':
        return IS("proto");
    case 'a':
        return IS("alert");
    default:
        return 0;
    }
#undef IS
}

INLINE const char *
skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

static int
hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v |= ch - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* The JSON validator below works on (p, e) and returns the position after what it read, or
 * NULL when the text is not JSON it accepts. */

/* A JSON string at p (its opening quote). ASCII only (non-ASCII: the full parse decides, as
 * it validates UTF-8); *esc tells whether it held escapes. The body is p + 1 .. result - 1. */
INLINE const char *
jstring(const char *p, const char *e, int *esc)
{
    p++;
    *esc = 0;
    for (;;) {
        p = skip_plain(p, e);
        if (p >= e)
            return NULL;
        if (*p == '"')
            return p + 1;
        if (*p != '\\')
            return NULL; /* a control character or non-ASCII */
        *esc = 1;
        if (e - p < 2)
            return NULL;
        switch (p[1]) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            p += 2;
            continue;
        case 'u': {
            int v;
            if (e - p < 6 || (v = hex4(p + 2)) < 0 || (v >= 0xD800 && v <= 0xDFFF))
                return NULL; /* surrogates: leave the pairing rules to the full parse */
            p += 6;
            continue;
        }
        default:
            return NULL;
        }
    }
}

INLINE int
at_digit(const char *p, const char *e)
{
    return p < e && *p >= '0' && *p <= '9';
}

static const char *
jnumber(const char *p, const char *e)
{
    if (p < e && *p == '-')
        p++;
    const char *d = p;
    if (p < e && *p == '0')
        p++;
    else {
        while (at_digit(p, e))
            p++;
        if (p == d || p - d > 18)
            return NULL; /* no digits, or an integer a 64-bit parser may refuse */
    }
    if (p < e && *p == '.') {
        const char *f = ++p;
        while (at_digit(p, e))
            p++;
        if (p == f)
            return NULL;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const char *x = p;
        while (at_digit(p, e))
            p++;
        if (p == x)
            return NULL;
    }
    return p;
}

INLINE const char *
word(const char *p, const char *e, const char *w, Py_ssize_t n)
{
    return e - p >= n && same(p, w, (size_t)n) ? p + n : NULL;
}
#define WORD(p, e, w) word((p), (e), (w), (Py_ssize_t)(sizeof(w) - 1))

static const char *jvalue(const char *p, const char *e, int depth);

/* Members of an object after its '{' (first = 1) or after a member's ',' (first = 0), up to
 * and including its '}'. level 1: the top-level object; 2: the alert object (the head read
 * its signature_id); 0: anything deeper. */
static const char *
jmembers(const char *p, const char *e, int depth, int first, int level, Rest *r)
{
    p = skip_ws(p, e);
    if (first && p < e && *p == '}')
        return p + 1;
    for (;;) {
        const char *k;
        int esc;
        p = skip_ws(p, e);
        if (p >= e || *p != '"' || (p = jstring(k = p, e, &esc)) == NULL)
            return NULL;
        Py_ssize_t kn = p - k - 2;
        k++;
        p = skip_ws(p, e);
        if (p >= e || *p != ':')
            return NULL;
        p = skip_ws(p + 1, e);
        if (level) {
            const char **want = NULL;
            Py_ssize_t *want_n = NULL;
            int bit = 0;
            if (esc)
                return NULL; /* an escaped key could spell one we read */
            if (level == 2 && kn == 12 && same(k, "signature_id", 12))
                return NULL;
            if (level == 1) {
                if (read_key(k, kn))
                    return NULL;
                if (kn == 4 && same(k, "host", 4))
                    want = &r->host, want_n = &r->host_n, bit = 1;
                else if (kn == 7 && same(k, "payload", 7))
                    want = &r->payload, want_n = &r->payload_n, bit = 2;
            }
            if (want != NULL) {
                const char *v = p;
                if ((r->seen & bit) || p >= e || *p != '"' || (p = jstring(v, e, &esc)) == NULL)
                    return NULL; /* twice or not a string: the full parse decides */
                r->seen |= bit;
                if (esc && bit == 1)
                    return NULL; /* an escaped sensor name: Python unescapes it */
                if (esc)
                    r->payload_escaped = 1; /* not base64: only an ICMP error would need it */
                else
                    *want = v + 1, *want_n = p - v - 2;
                goto next;
            }
        }
        if (depth >= MAX_DEPTH || p >= e) /* jvalue() refuses it */
            return NULL;
        if (*p == '"') /* the common values inline, the rest in jvalue() */
            p = jstring(p, e, &esc);
        else if (*p >= '0' && *p <= '9')
            p = jnumber(p, e);
        else
            p = jvalue(p, e, depth + 1);
        if (p == NULL)
            return NULL;
    next:
        p = skip_ws(p, e);
        if (p >= e)
            return NULL;
        if (*p == '}')
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *
jvalue(const char *p, const char *e, int depth)
{
    int esc;
    if (depth > MAX_DEPTH || p >= e)
        return NULL;
    switch (*p) {
    case '"':
        return jstring(p, e, &esc);
    case '{':
        return jmembers(p + 1, e, depth, 1, 0, NULL);
    case '[':
        p = skip_ws(p + 1, e);
        if (p < e && *p == ']')
            return p + 1;
        for (;;) {
            p = skip_ws(p, e);
            if ((p = jvalue(p, e, depth + 1)) == NULL)
                return NULL;
            p = skip_ws(p, e);
            if (p >= e)
                return NULL;
            if (*p == ']')
                return p + 1;
            if (*p++ != ',')
                return NULL;
        }
    case 't':
        return WORD(p, e, "true");
    case 'f':
        return WORD(p, e, "false");
    case 'n':
        return WORD(p, e, "null");
    default:
        return jnumber(p, e);
    }
}

/* c->p: just after the alert object's `"signature_id":N,`. The alert object's remaining
 * members, then the top-level ones, then the end of the line. */
static int
rest_(Cur *c, Rest *r)
{
    const char *p = jmembers(c->p, c->end, 2, 0, 2, r), *e = c->end;
    if (p == NULL)
        return 0;
    p = skip_ws(p, e);
    if (p < e && *p == ',') {
        if ((p = jmembers(p + 1, e, 1, 0, 1, r)) == NULL)
            return 0;
    }
    else if (p >= e || *p++ != '}')
        return 0;
    return skip_ws(p, e) == e;
}

/* -- the quoted probe of an ICMP error (decode.py: _b64 + packet.quoted_probe) ---------- */

#define PAYLOAD_MAX 4096

/* b64_value[byte]: its value as a base64 digit, -1 for anything else; filled at import. */
static signed char b64_value[256];

static void
fill_b64_value(void)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_value, -1, sizeof(b64_value));
    for (int i = 0; i < 64; i++)
        b64_value[(unsigned char)digits[i]] = (signed char)i;
}

/* Canonical base64 only (length a multiple of 4, padding only at the end, unused bits
 * zero); anything else gives -1 and the Python path decides. */
static Py_ssize_t
b64(const char *s, Py_ssize_t n, unsigned char *out)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > PAYLOAD_MAX)
        return -1; /* longer quotes than any ICMP error carries: the Python path decides */
    const unsigned char *u = (const unsigned char *)s;
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i += 4) {
        int v0 = b64_value[u[i]], v1 = b64_value[u[i + 1]], v2 = b64_value[u[i + 2]];
        int v3 = b64_value[u[i + 3]], pad = 0;
        if (i + 4 == n && u[i + 3] == '=') { /* "xxx=" or "xx==" */
            v3 = 0, pad = 1;
            if (u[i + 2] == '=')
                v2 = 0, pad = 2;
        }
        if ((v0 | v1 | v2 | v3) < 0)
            return -1;
        unsigned int w = (unsigned)v0 << 18 | (unsigned)v1 << 12 | (unsigned)v2 << 6 | (unsigned)v3;
        if ((pad == 1 && (w & 0xFF)) || (pad == 2 && (w & 0xFFFF)))
            return -1;
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return o;
}

static int
port_proto(int p)
{
    return p == 6 || p == 17 || p == 33 || p == 132 || p == 136;
}

/* packet.quoted_probe(buf): the probe's protocol, packed source and destination port. */
static int
quoted(const unsigned char *b, Py_ssize_t n, int *proto, const unsigned char **src,
       Py_ssize_t *src_n, int *dport)
{
    Py_ssize_t pos;
    int nxt;
    if (n < 20)
        return 0;
    if (b[0] >> 4 == 4) {
        Py_ssize_t ihl = (b[0] & 0x0F) * 4;
        if (ihl < 20 || n < ihl || (((b[6] << 8) | b[7]) & 0x1FFF))
            return 0;
        nxt = b[9], pos = ihl, *src = b + 12, *src_n = 4;
    }
    else if (b[0] >> 4 == 6 && n >= 40) {
        nxt = b[6], pos = 40, *src = b + 8, *src_n = 16;
        int i;
        for (i = 0; i < 16; i++) {
            if (nxt == 0 || nxt == 43 || nxt == 60) {
                if (n < pos + 8)
                    return 0;
                nxt = b[pos], pos += (b[pos + 1] + 1) * 8;
            }
            else if (nxt == 44) {
                if (n < pos + 8 || (((b[pos + 2] << 8) | b[pos + 3]) & 0xFFF8))
                    return 0;
                nxt = b[pos], pos += 8;
            }
            else if (nxt == 51) {
                if (n < pos + 8)
                    return 0;
                nxt = b[pos], pos += (b[pos + 1] + 2) * 4;
            }
            else
                break;
        }
        if (i == 16)
            return 0;
    }
    else
        return 0;
    if (!port_proto(nxt) || n < pos + 4)
        return 0;
    *proto = nxt;
    *dport = (b[pos + 2] << 8) | b[pos + 3];
    return 1;
}

/* Reads one alert line written in Suricata's layout into h: 1, else 0 (no Python objects,
 * no exceptions). */
static int
parse_head(const char *line, Py_ssize_t n, Head *h)
{
    Cur c = {line, line + n};
    const char *s, *iface = NULL;
    Py_ssize_t sn, iface_n = 0;
    long long ignored;
    int r;
    h->sport = h->itype = h->icode = -1;
    h->qproto = h->qport = -1;
    h->qsrc_n = 0;

    if (n < 2 || line[n - 1] != '}')
        return 0;
    if (!LIT(&c, "{\"timestamp\":\"") || !str_(&c, &s, &sn, 0) || !ts_(s, sn, &h->ts) ||
        !LIT(&c, ","))
        return 0;
    if (OPT_UINT(&c, "\"flow_id\":", &ignored) < 0 ||
        OPT_UINT(&c, "\"parent_id\":", &ignored) < 0 ||
        OPT_UINT(&c, "\"sensor_id\":", &ignored) < 0)
        return 0;
    if (LIT(&c, "\"in_iface\":\"")) {
        if (!str_(&c, &iface, &iface_n, 0) || !LIT(&c, ","))
            return 0;
    }
    if (OPT_UINT(&c, "\"pcap_cnt\":", &ignored) < 0) /* suricata -r */
        return 0;
    if (!LIT(&c, "\"event_type\":\"alert\","))
        return 0;
    if (LIT(&c, "\"vlan\":[")) {
        do {
            if (!uint_(&c, &ignored))
                return 0;
        } while (LIT(&c, ","));
        if (!LIT(&c, "],"))
            return 0;
    }
    if (!LIT(&c, "\"src_ip\":\"") || !str_(&c, &h->src, &h->src_n, 1) || !LIT(&c, ","))
        return 0;
    if ((r = OPT_UINT(&c, "\"src_port\":", &h->sport)) < 0)
        return 0;
    if (!LIT(&c, "\"dest_ip\":\"") || !str_(&c, &h->dst, &h->dst_n, 1) || !LIT(&c, ","))
        return 0;
    if (OPT_UINT(&c, "\"dest_port\":", &ignored) < 0 || OPT_UINT(&c, "\"ip_v\":", &ignored) < 0)
        return 0;
    if (!LIT(&c, "\"proto\":\"") || !str_(&c, &h->proto, &h->proto_n, 0) || !LIT(&c, ","))
        return 0;
    if ((r = OPT_UINT(&c, "\"icmp_type\":", &h->itype)) < 0)
        return 0;
    if (r == 1 && OPT_UINT(&c, "\"icmp_code\":", &h->icode) != 1)
        return 0;
    if (LIT(&c, "\"pkt_src\":\"")) {
        if (!str_(&c, &s, &sn, 0) || !LIT(&c, ","))
            return 0;
    }
    if (!LIT(&c, "\"alert\":{\"action\":\"") || !str_(&c, &s, &sn, 0) || !LIT(&c, ",") ||
        OPT_UINT(&c, "\"gid\":", &ignored) != 1 || !LIT(&c, "\"signature_id\":") ||
        !uint_(&c, &h->sid) || !LIT(&c, ","))
        return 0;

    /* The rest of the line: checked as JSON (orjson would reject it otherwise) while
     * looking for the top-level "host" (sensor name) and "payload" (an ICMP error's quoted
     * probe), and for keys already read that a later copy would override. */
    Rest rest = {NULL, NULL, 0, 0, 0, 0};
    if (!rest_(&c, &rest))
        return 0;
    h->sensor = rest.host != NULL ? rest.host : iface;
    h->sensor_n = rest.host != NULL ? rest.host_n : iface_n;
    if (h->itype >= 0) {
        unsigned char raw[PAYLOAD_MAX];
        const unsigned char *qsrc;
        Py_ssize_t rawn;
        if (rest.payload == NULL) /* absent or escaped: the full path looks at "packet" */
            return 0;
        if ((rawn = b64(rest.payload, rest.payload_n, raw)) < 0 ||
            !quoted(raw, rawn, &h->qproto, &qsrc, &h->qsrc_n, &h->qport))
            return 0;
        memcpy(h->qsrc, qsrc, (size_t)h->qsrc_n);
    }
    return 1;

}

/* The fields of one alert line as decode.py's Decoder._event() takes them: (ts, src, dst,
 * proto, src_port|None, icmp_type|None, icmp_code|None, sid, sensor, probe_proto|None,
 * probe_src|None, probe_port|None); src and dst: the strings of h's addresses. A new
 * reference, NULL with an exception set. */
static PyObject *
head_tuple(const Head *h, PyObject *sid, PyObject *src, PyObject *dst)
{
    PyObject *t = PyTuple_New(12), *o;
    if (t == NULL)
        return NULL;
#define SET(i, expr)                                                                          \
    do {                                                                                     \
        if ((o = (expr)) == NULL)                                                            \
            goto err;                                                                        \
        PyTuple_SET_ITEM(t, (i), o);                                                         \
    } while (0)
    SET(0, PyFloat_FromDouble(h->ts));
    SET(1, Py_NewRef(src));
    SET(2, Py_NewRef(dst));
    SET(3, proto_str(h->proto, h->proto_n));
    SET(4, number(h->sport));
    SET(5, number(h->itype));
    SET(6, number(h->icode));
    SET(7, Py_NewRef(sid));
    SET(8, sensor_str(h));
    SET(9, number(h->qproto));
    SET(10, h->qproto >= 0 ? PyBytes_FromStringAndSize((const char *)h->qsrc, h->qsrc_n)
                           : Py_NewRef(Py_None));
    SET(11, number(h->qport));
#undef SET
    return t;
err:
    Py_DECREF(t);
    return NULL;
}

/* head(line): parse_head() and head_tuple(), or None when the line is not in Suricata's
 * layout. */
static PyObject *
head(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "head: bytes expected");
        return NULL;
    }
    Head h;
    if (!parse_head(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg), &h))
        Py_RETURN_NONE;
    PyObject *sid = sid_int(h.sid), *src = sid ? text(h.src, h.src_n) : NULL;
    PyObject *dst = src ? text(h.dst, h.dst_n) : NULL;
    PyObject *t = dst ? head_tuple(&h, sid, src, dst) : NULL;
    Py_XDECREF(sid);
    Py_XDECREF(src);
    Py_XDECREF(dst);
    return t;
}

static PyMethodDef methods[] = {
    {"prefilter", prefilter, METH_VARARGS,
     "prefilter(buf, start, end, max_line, sids=None, ctx=None) -> (lines, skipped, foreign, "
     "items, kinds, counts)"},
    {"prefilter_lines", prefilter_lines, METH_VARARGS,
     "prefilter_lines(lines, max_line, sids=None, ctx=None) -> as prefilter()"},
    {"head", head, METH_O, "head(line) -> fields of a Suricata alert line, or None"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_fast", "C accelerator for scanguard_ids.eve.decode", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fast(void)
{
    fill_char_class();
    fill_b64_value();
    TCP = PyUnicode_InternFromString("TCP");
    ICMP = PyUnicode_InternFromString("ICMP");
    ICMP6 = PyUnicode_InternFromString("IPv6-ICMP");
    if (TCP == NULL || ICMP == NULL || ICMP6 == NULL)
        return NULL;
    return PyModule_Create(&module);
}
