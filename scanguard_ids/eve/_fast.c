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
 * lines and real Suricata output. Every read is bounds-checked against the line.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

static const char ET_KEY[] = "\"event_type\"";
#define ET_LEN 12

/* kinds[i] of a candidate line */
#define KIND_OTHER 0 /* the full Decoder._decode path */
#define KIND_ALERT 1 /* its first "event_type" is a compact "alert": Decoder._alert */

/* 1: settled (another event type, skip it); 0: unsettled, *kind tells which path. */
static int
settled(const char *s, Py_ssize_t n, char *kind)
{
    const char *end = s + n;
    const char *p = memmem(s, (size_t)n, ET_KEY, ET_LEN);
    *kind = KIND_OTHER;
    if (p == NULL)
        return 0;
    const char *v = p + ET_LEN;
    if (end - v < 2 || v[0] != ':' || v[1] != '"')
        return 0;
    v += 2;
    if (end - v >= 6 && memcmp(v, "alert\"", 6) == 0) {
        *kind = KIND_ALERT;
        return 0;
    }
    if (v < end && *v == '\\')
        return 0;
    return memmem(v, (size_t)(end - v), ET_KEY, ET_LEN) == NULL;
}

static PyObject *fields(const char *line, Py_ssize_t n);
static PyObject *TCP, *ICMP, *ICMP6; /* interned protocol names, set at import */

#define KIND_EVENT 3 /* the item is the finished ResponseEvent */

/* What decode.py's Decoder._event() builds from fields() -- for the common case only: both
 * addresses already in the decoder's cache, a TCP RST or an ICMP(v6) port unreachable.
 * ctx = (addrs, ResponseEvent, (TCP_RST, ICMP4, ICMP6), PORT_PROTOCOLS). Returns a new
 * reference to the event, None (new reference) for "let _event() do it", NULL on error;
 * counts[0..2] += alerts, no_port, remote_mismatch as _event() would count them. */
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

/* A canonical dotted quad (what ipaddress prints: no leading zeros, each part <= 255). */
static int
ipv4_canon(PyObject *text, unsigned char *packed)
{
    if (!PyUnicode_IS_COMPACT_ASCII(text))
        return 0;
    const char *p = (const char *)PyUnicode_DATA(text), *e = p + PyUnicode_GET_LENGTH(text);
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

/* (canonical text, packed) of an address from fields(): IPv4 here, IPv6 from the decoder's
 * cache (decode.py's _addr() fills it). 0: not known here. Borrowed text. */
static int
address(PyObject *addrs, PyObject *text, PyObject **canon, const unsigned char **packed,
        Py_ssize_t *packed_n, unsigned char *v4)
{
    if (ipv4_canon(text, v4)) {
        *canon = text, *packed = v4, *packed_n = 4;
        return 1;
    }
    PyObject *hit = PyDict_GetItemWithError(addrs, text);
    if (hit == NULL || !PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 2 ||
        !PyBytes_Check(PyTuple_GET_ITEM(hit, 1)))
        return PyErr_Occurred() ? -1 : 0;
    *canon = PyTuple_GET_ITEM(hit, 0);
    *packed = (const unsigned char *)PyBytes_AS_STRING(PyTuple_GET_ITEM(hit, 1));
    *packed_n = PyBytes_GET_SIZE(PyTuple_GET_ITEM(hit, 1));
    return 1;
}

/* What decode.py's Decoder._event() builds from fields() -- for the common case only: both
 * addresses IPv4 or already in the decoder's cache, a TCP RST or an ICMP(v6) port
 * unreachable. ctx = (addrs, ResponseEvent, (TCP_RST, ICMP4, ICMP6), ("tcp",
 * PORT_PROTOCOLS)). Returns a new reference to the event, None (new reference) for "let
 * _event() do it", NULL on error; counts[0..2] += alerts, no_port, remote_mismatch as
 * _event() would count them. */
static PyObject *
event(PyObject *ctx, PyObject *f, Py_ssize_t *counts)
{
    PyObject *addrs = PyTuple_GET_ITEM(ctx, 0), *make = PyTuple_GET_ITEM(ctx, 1);
    PyObject *kinds = PyTuple_GET_ITEM(ctx, 2), *names = PyTuple_GET_ITEM(ctx, 3);
    PyObject *src, *dst;
    const unsigned char *src_pk, *dst_pk;
    Py_ssize_t src_n, dst_n;
    unsigned char v4s[4], v4d[4];
    int r = address(addrs, PyTuple_GET_ITEM(f, 1), &src, &src_pk, &src_n, v4s);
    if (r == 1)
        r = address(addrs, PyTuple_GET_ITEM(f, 2), &dst, &dst_pk, &dst_n, v4d);
    if (r <= 0)
        return r < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *proto = PyTuple_GET_ITEM(f, 3), *kind, *name, *port;
    int no_port = 0, mismatch = 0;
    if (proto == TCP) {
        kind = PyTuple_GET_ITEM(kinds, 0);
        name = PyTuple_GET_ITEM(names, 0);
        port = PyTuple_GET_ITEM(f, 4);
        if (port != Py_None) {
            long long v = PyLong_AsLongLong(port); /* fields() gives at most 18 digits */
            if (v == -1 && PyErr_Occurred())
                return NULL;
            if (v < 0 || v > 0xFFFF)
                port = Py_None;
        }
        no_port = port == Py_None;
    }
    else {
        PyObject *it = PyTuple_GET_ITEM(f, 5), *ic = PyTuple_GET_ITEM(f, 6);
        long long t = it == Py_None ? -1 : PyLong_AsLongLong(it);
        long long c = ic == Py_None ? -1 : PyLong_AsLongLong(ic);
        if (PyErr_Occurred())
            return NULL;
        if (proto == ICMP && t == 3 && c == 3)
            kind = PyTuple_GET_ITEM(kinds, 1);
        else if (proto == ICMP6 && t == 1 && c == 4)
            kind = PyTuple_GET_ITEM(kinds, 2);
        else
            return Py_NewRef(Py_None); /* unknown_kind: counted by _event() */
        PyObject *qproto = PyTuple_GET_ITEM(f, 9), *qsrc = PyTuple_GET_ITEM(f, 10);
        name = qproto == Py_None ? NULL
                                 : PyDict_GetItemWithError(PyTuple_GET_ITEM(names, 1), qproto);
        if (name == NULL || !PyBytes_Check(qsrc))
            return PyErr_Occurred() ? NULL : Py_NewRef(Py_None);
        port = PyTuple_GET_ITEM(f, 11);
        mismatch = PyBytes_GET_SIZE(qsrc) != dst_n ||
                   memcmp(PyBytes_AS_STRING(qsrc), dst_pk, (size_t)dst_n) != 0;
    }
    PyObject *args[8] = {
        PyTuple_GET_ITEM(f, 0), dst, src, port, name, kind, PyTuple_GET_ITEM(f, 7),
        PyTuple_GET_ITEM(f, 8),
    };
    PyObject *ev = new_event(make, args);
    if (ev != NULL) {
        counts[0]++;
        counts[1] += no_port;
        counts[2] += mismatch;
    }
    return ev;
}

#define KIND_FIELDS 2 /* an alert of ours already read: the item is fields()'s tuple */

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
        PyObject *f = fields(line, len);
        if (f == NULL)
            return -1;
        if (f != Py_None) {
            int ours = PySet_Contains(sc->sids, PyTuple_GET_ITEM(f, 7));
            if (ours <= 0) {
                Py_DECREF(f);
                if (ours < 0)
                    return -1;
                sc->foreign++;
                return 0;
            }
            if (sc->ctx != Py_None) {
                PyObject *ev = event(sc->ctx, f, sc->counts);
                if (ev == NULL) {
                    Py_DECREF(f);
                    return -1;
                }
                if (ev != Py_None) {
                    Py_DECREF(f);
                    return append(sc->items, sc->kinds, ev, KIND_EVENT);
                }
                Py_DECREF(ev);
            }
            return append(sc->items, sc->kinds, f, KIND_FIELDS);
        }
        Py_DECREF(f);
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
 * also read here; ours come back as fields() tuples (kind 2), foreign ones are only
 * counted, and a line fields() does not recognise comes back as bytes (kind 1). With ctx
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

/* -- head(): a cursor over one line ------------------------------------------------------ */

typedef struct {
    const char *p;
    const char *end;
} Cur;

static int
lit(Cur *c, const char *s, Py_ssize_t n)
{
    if (c->end - c->p < n || memcmp(c->p, s, (size_t)n) != 0)
        return 0;
    c->p += n;
    return 1;
}
#define LIT(c, s) lit((c), (s), (Py_ssize_t)(sizeof(s) - 1))

/* A JSON non-negative integer without leading zeros, at most 18 digits. */
static int
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

/* A string body up to its closing quote, without escapes or control characters.
 * ip: only the characters of an IPv4/IPv6 address. */
static int
str_(Cur *c, const char **s, Py_ssize_t *n, int ip)
{
    const char *p = c->p;
    while (p < c->end && *p != '"') {
        unsigned char ch = (unsigned char)*p;
        if (ch == '\\' || ch < 0x20 || ch >= 0x80)
            return 0; /* escapes and non-ASCII text: the full parse reads them */
        if (ip && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
                    (ch >= 'A' && ch <= 'F') || ch == '.' || ch == ':'))
            return 0;
        p++;
    }
    if (p >= c->end)
        return 0;
    *s = c->p;
    *n = p - c->p;
    c->p = p + 1;
    return 1;
}

/* Optional "key":<uint>, ; returns 1 when present (and parsed), 0 when absent, -1 on error. */
static int
opt_uint(Cur *c, const char *key, Py_ssize_t klen, long long *out)
{
    if (c->end - c->p < klen || memcmp(c->p, key, (size_t)klen) != 0)
        return 0;
    c->p += klen;
    if (!uint_(c, out) || !LIT(c, ","))
        return -1;
    return 1;
}
#define OPT_UINT(c, key, out) opt_uint((c), (key), (Py_ssize_t)(sizeof(key) - 1), (out))

static int
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
#define IS(name) (n == (Py_ssize_t)sizeof(name) - 1 && memcmp(k, name, sizeof(name) - 1) == 0)
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

static inline void
ws(Cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\r' || *c->p == '\n'))
        c->p++;
}

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

/* A JSON string at c->p (its opening quote). ASCII only (non-ASCII: the full parse decides,
 * as it validates UTF-8); *esc tells whether it held escapes. */
static int
jstring(Cur *c, const char **s, Py_ssize_t *n, int *esc)
{
    const char *p = c->p + 1;
    *esc = 0;
    for (;;) {
        while (c->end - p >= 8 && plain8(p))
            p += 8;
        if (p >= c->end)
            return 0;
        unsigned char ch = (unsigned char)*p;
        if (ch == '"')
            break;
        if (ch < 0x20 || ch >= 0x80)
            return 0;
        if (ch == '\\') {
            *esc = 1;
            if (c->end - p < 2)
                return 0;
            switch (p[1]) {
            case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
                p += 2;
                continue;
            case 'u': {
                int v;
                if (c->end - p < 6 || (v = hex4(p + 2)) < 0 || (v >= 0xD800 && v <= 0xDFFF))
                    return 0; /* surrogates: leave the pairing rules to the full parse */
                p += 6;
                continue;
            }
            default:
                return 0;
            }
        }
        p++;
    }
    *s = c->p + 1;
    *n = p - (c->p + 1);
    c->p = p + 1;
    return 1;
}

static int
jnumber(Cur *c)
{
    const char *p = c->p, *e = c->end;
    if (p < e && *p == '-')
        p++;
    const char *d = p;
    if (p < e && *p == '0')
        p++;
    else {
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == d || p - d > 18)
            return 0; /* no digits, or an integer a 64-bit parser may refuse */
    }
    if (p < e && *p == '.') {
        const char *f = ++p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == f)
            return 0;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const char *x = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == x)
            return 0;
    }
    c->p = p;
    return 1;
}

static int jvalue(Cur *c, int depth);

/* After an object member or an array element: 1 on ',' (another one follows), 2 on
 * ``close`` (the container ends there), 0 on anything else. */
static int
next_item(Cur *c, char close)
{
    ws(c);
    if (c->p >= c->end)
        return 0;
    if (*c->p == ',') {
        c->p++;
        return 1;
    }
    if (*c->p == close) {
        c->p++;
        return 2;
    }
    return 0;
}

/* Members of an object after its '{' (first = 1) or after a member's ',' (first = 0), up to
 * and including its '}'. level 1: the top-level object; 2: the alert object (the head read
 * its signature_id); 0: anything deeper. */
static int
jmembers(Cur *c, int depth, int first, int level, Rest *r)
{
    ws(c);
    if (first && c->p < c->end && *c->p == '}') {
        c->p++;
        return 1;
    }
    for (;;) {
        const char *k;
        Py_ssize_t kn;
        int esc;
        ws(c);
        if (c->p >= c->end || *c->p != '"' || !jstring(c, &k, &kn, &esc))
            return 0;
        ws(c);
        if (c->p >= c->end || *c->p != ':')
            return 0;
        c->p++;
        ws(c);
        if (level && esc)
            return 0; /* an escaped key could spell one we read */
        const char **want = NULL;
        Py_ssize_t *want_n = NULL;
        int bit = 0;
        if (level == 2 && kn == 12 && memcmp(k, "signature_id", 12) == 0)
            return 0;
        if (level == 1) {
            if (read_key(k, kn))
                return 0;
            if (kn == 4 && memcmp(k, "host", 4) == 0)
                want = &r->host, want_n = &r->host_n, bit = 1;
            else if (kn == 7 && memcmp(k, "payload", 7) == 0)
                want = &r->payload, want_n = &r->payload_n, bit = 2;
        }
        if (want != NULL) {
            const char *v;
            Py_ssize_t vn;
            if ((r->seen & bit) || c->p >= c->end || *c->p != '"' || !jstring(c, &v, &vn, &esc))
                return 0; /* twice or not a string: the full parse decides */
            r->seen |= bit;
            if (esc && bit == 1)
                return 0; /* an escaped sensor name: Python unescapes it */
            if (esc)
                r->payload_escaped = 1; /* not base64: only an ICMP error would need it */
            else
                *want = v, *want_n = vn;
        }
        else if (!jvalue(c, depth + 1))
            return 0;
        int step = next_item(c, '}');
        if (step != 1)
            return step == 2;
    }
}

static int
jvalue(Cur *c, int depth)
{
    const char *s;
    Py_ssize_t n;
    int esc;
    if (depth > MAX_DEPTH || c->p >= c->end)
        return 0;
    switch (*c->p) {
    case '{':
        c->p++;
        return jmembers(c, depth, 1, 0, NULL);
    case '[':
        c->p++;
        ws(c);
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            return 1;
        }
        for (;;) {
            ws(c);
            if (!jvalue(c, depth + 1))
                return 0;
            int step = next_item(c, ']');
            if (step != 1)
                return step == 2;
        }
    case '"':
        return jstring(c, &s, &n, &esc);
    case 't':
        return LIT(c, "true");
    case 'f':
        return LIT(c, "false");
    case 'n':
        return LIT(c, "null");
    default:
        return jnumber(c);
    }
}

/* c->p: just after the alert object's `"signature_id":N,`. The alert object's remaining
 * members, then the top-level ones, then the end of the line. */
static int
rest_(Cur *c, Rest *r)
{
    if (!jmembers(c, 2, 0, 2, r))
        return 0;
    ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        if (!jmembers(c, 1, 0, 1, r))
            return 0;
    }
    else if (c->p >= c->end || *c->p++ != '}')
        return 0;
    ws(c);
    return c->p == c->end;
}

/* -- the quoted probe of an ICMP error (decode.py: _b64 + packet.quoted_probe) ---------- */

#define PAYLOAD_MAX 4096

static int
b64val(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Canonical base64 only (length a multiple of 4, padding only at the end, unused bits
 * zero); anything else gives -1 and the Python path decides. */
static Py_ssize_t
b64(const char *s, Py_ssize_t n, unsigned char *out)
{
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > PAYLOAD_MAX)
        return -1; /* longer quotes than any ICMP error carries: the Python path decides */
    Py_ssize_t o = 0;
    for (Py_ssize_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char ch = (unsigned char)s[i + k];
            if (ch == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
                continue;
            }
            if (pad || (v[k] = b64val(ch)) < 0)
                return -1;
        }
        unsigned int w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | (unsigned)v[3];
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

static PyObject *
fallback(void)
{
    Py_RETURN_NONE;
}

static PyObject *last_sensor;        /* the sensor name of the previous line, reused */

static PyObject *
proto_str(const char *s, Py_ssize_t n)
{
    if (n == 3 && memcmp(s, "TCP", 3) == 0)
        return Py_NewRef(TCP);
    if (n == 4 && memcmp(s, "ICMP", 4) == 0)
        return Py_NewRef(ICMP);
    if (n == 9 && memcmp(s, "IPv6-ICMP", 9) == 0)
        return Py_NewRef(ICMP6);
    return PyUnicode_DecodeUTF8(s, n, "strict");
}

static PyObject *
sensor_str(const char *s, Py_ssize_t n)
{
    if (last_sensor != NULL && PyUnicode_GET_LENGTH(last_sensor) == n &&
        PyUnicode_IS_ASCII(last_sensor) && memcmp(PyUnicode_DATA(last_sensor), s, (size_t)n) == 0)
        return Py_NewRef(last_sensor);
    PyObject *o = PyUnicode_DecodeUTF8(s, n, "strict");
    if (o != NULL)
        Py_XSETREF(last_sensor, Py_NewRef(o));
    return o;
}

/* The fields of one alert line: (ts, src, dst, proto, src_port|None, icmp_type|None,
 * icmp_code|None, sid, sensor, probe_proto|None, probe_src|None, probe_port|None), or None
 * when the line is not in Suricata's layout (new references; NULL with an exception set). */
static PyObject *
fields(const char *line, Py_ssize_t n)
{
    Cur c = {line, line + n};
    const char *s, *iface = NULL, *src, *dst, *proto;
    Py_ssize_t sn, iface_n = 0, src_n, dst_n, proto_n;
    long long ignored, sport = -1, itype = -1, icode = -1, sid;
    double ts;
    int r;

    if (n < 2 || line[n - 1] != '}')
        Py_RETURN_NONE;
    if (!LIT(&c, "{\"timestamp\":\"") || !str_(&c, &s, &sn, 0) || !ts_(s, sn, &ts) ||
        !LIT(&c, ","))
        Py_RETURN_NONE;
    if (OPT_UINT(&c, "\"flow_id\":", &ignored) < 0 ||
        OPT_UINT(&c, "\"parent_id\":", &ignored) < 0 ||
        OPT_UINT(&c, "\"sensor_id\":", &ignored) < 0)
        Py_RETURN_NONE;
    if (LIT(&c, "\"in_iface\":\"")) {
        if (!str_(&c, &iface, &iface_n, 0) || !LIT(&c, ","))
            Py_RETURN_NONE;
    }
    if (OPT_UINT(&c, "\"pcap_cnt\":", &ignored) < 0) /* suricata -r */
        Py_RETURN_NONE;
    if (!LIT(&c, "\"event_type\":\"alert\","))
        Py_RETURN_NONE;
    if (LIT(&c, "\"vlan\":[")) {
        do {
            if (!uint_(&c, &ignored))
                Py_RETURN_NONE;
        } while (LIT(&c, ","));
        if (!LIT(&c, "],"))
            Py_RETURN_NONE;
    }
    if (!LIT(&c, "\"src_ip\":\"") || !str_(&c, &src, &src_n, 1) || !LIT(&c, ","))
        Py_RETURN_NONE;
    if ((r = OPT_UINT(&c, "\"src_port\":", &sport)) < 0)
        Py_RETURN_NONE;
    if (!LIT(&c, "\"dest_ip\":\"") || !str_(&c, &dst, &dst_n, 1) || !LIT(&c, ","))
        Py_RETURN_NONE;
    if (OPT_UINT(&c, "\"dest_port\":", &ignored) < 0 || OPT_UINT(&c, "\"ip_v\":", &ignored) < 0)
        Py_RETURN_NONE;
    if (!LIT(&c, "\"proto\":\"") || !str_(&c, &proto, &proto_n, 0) || !LIT(&c, ","))
        Py_RETURN_NONE;
    if ((r = OPT_UINT(&c, "\"icmp_type\":", &itype)) < 0)
        Py_RETURN_NONE;
    if (r == 1 && OPT_UINT(&c, "\"icmp_code\":", &icode) != 1)
        Py_RETURN_NONE;
    if (LIT(&c, "\"pkt_src\":\"")) {
        if (!str_(&c, &s, &sn, 0) || !LIT(&c, ","))
            Py_RETURN_NONE;
    }
    if (!LIT(&c, "\"alert\":{\"action\":\"") || !str_(&c, &s, &sn, 0) || !LIT(&c, ",") ||
        OPT_UINT(&c, "\"gid\":", &ignored) != 1 || !LIT(&c, "\"signature_id\":") ||
        !uint_(&c, &sid) || !LIT(&c, ","))
        Py_RETURN_NONE;

    /* The rest of the line: checked as JSON (orjson would reject it otherwise) while
     * looking for the top-level "host" (sensor name) and "payload" (an ICMP error's quoted
     * probe), and for keys already read that a later copy would override. */
    Rest rest = {NULL, NULL, 0, 0, 0, 0};
    if (!rest_(&c, &rest))
        return fallback();
    const char *sensor = rest.host != NULL ? rest.host : iface;
    Py_ssize_t sensor_n = rest.host != NULL ? rest.host_n : iface_n;
    int qproto = -1, qport = -1;
    const unsigned char *qsrc = NULL;
    Py_ssize_t qsrc_n = 0;
    unsigned char raw[PAYLOAD_MAX];
    if (itype >= 0) {
        Py_ssize_t rawn;
        if (rest.payload == NULL) /* absent or escaped: the full path looks at "packet" */
            return fallback();
        if ((rawn = b64(rest.payload, rest.payload_n, raw)) < 0 ||
            !quoted(raw, rawn, &qproto, &qsrc, &qsrc_n, &qport))
            return fallback();
    }

    PyObject *t = PyTuple_New(12);
    if (t == NULL)
        return NULL;
    PyObject *o;
#define SET(i, expr)                                                                          \
    do {                                                                                     \
        if ((o = (expr)) == NULL)                                                            \
            goto err;                                                                        \
        PyTuple_SET_ITEM(t, (i), o);                                                         \
    } while (0)
#define INT_OR_NONE(v) ((v) >= 0 ? PyLong_FromLongLong(v) : Py_NewRef(Py_None))
    SET(0, PyFloat_FromDouble(ts));
    SET(1, PyUnicode_DecodeUTF8(src, src_n, "strict"));
    SET(2, PyUnicode_DecodeUTF8(dst, dst_n, "strict"));
    SET(3, proto_str(proto, proto_n));
    SET(4, INT_OR_NONE(sport));
    SET(5, INT_OR_NONE(itype));
    SET(6, INT_OR_NONE(icode));
    SET(7, PyLong_FromLongLong(sid));
    SET(8, sensor != NULL ? sensor_str(sensor, sensor_n) : PyUnicode_FromStringAndSize("", 0));
    SET(9, INT_OR_NONE(qproto));
    SET(10, qsrc != NULL ? PyBytes_FromStringAndSize((const char *)qsrc, qsrc_n)
                         : Py_NewRef(Py_None));
    SET(11, INT_OR_NONE(qport));
    return t;
err:
    Py_DECREF(t);
    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
        PyErr_Clear();
        return fallback(); /* not UTF-8: the full parse counts it */
    }
    return NULL;
}

static PyObject *
head(PyObject *self, PyObject *arg)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "head: bytes expected");
        return NULL;
    }
    return fields(PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
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
    TCP = PyUnicode_InternFromString("TCP");
    ICMP = PyUnicode_InternFromString("ICMP");
    ICMP6 = PyUnicode_InternFromString("IPv6-ICMP");
    if (TCP == NULL || ICMP == NULL || ICMP6 == NULL)
        return NULL;
    return PyModule_Create(&module);
}
