/* Optional C accelerator for scanguard_ids.eve.decode. Two functions, both pure:
 *
 *   prefilter(buf, start, end, max_line, sids) -> (lines, skipped, foreign, items, kinds)
 *       The byte check of Decoder.decode_batch over a whole buffer of EVE lines, without
 *       making a bytes object per line: only the lines the check cannot settle come back,
 *       and with sids, our alerts come back already read by head().
 *   head(line) -> tuple | None
 *       The fields the decoder needs, read from the fixed layout Suricata 7 writes for an
 *       alert; None for anything else (the caller then takes the full JSON parse).
 *
 * The Python code in decode.py is the reference: tests compare both paths line by line.
 * Every read is bounds-checked against the buffer; nothing here allocates per skipped line.
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

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

/* prefilter(buf, start, end, max_line, sids) -> (lines, skipped, foreign, items, kinds)
 * sids None: items are the unsettled lines (kinds 0/1). A set of ints: compact alerts are
 * also read here; ours come back as fields() tuples (kind 2), foreign ones are only
 * counted, and a line fields() does not recognise comes back as bytes (kind 1). */
static PyObject *
prefilter(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t start, stop, max_line;
    PyObject *sids = Py_None;
    if (!PyArg_ParseTuple(args, "y*nnn|O", &view, &start, &stop, &max_line, &sids))
        return NULL;
    if (start < 0 || stop > view.len || start > stop ||
        (sids != Py_None && !PyAnySet_Check(sids))) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "prefilter: bad start/end or sids");
        return NULL;
    }
    const char *buf = (const char *)view.buf;
    Py_ssize_t lines = 0, skipped = 0, foreign = 0;
    PyObject *items = PyList_New(0);
    PyObject *kinds = PyByteArray_FromStringAndSize(NULL, 0);
    if (items == NULL || kinds == NULL)
        goto fail;
    Py_ssize_t pos = start;
    while (pos < stop) {
        const char *nl = memchr(buf + pos, '\n', (size_t)(stop - pos));
        Py_ssize_t eol = nl ? (Py_ssize_t)(nl - buf) : stop;
        Py_ssize_t len = eol - pos;
        const char *line = buf + pos;
        char kind = KIND_OTHER;
        lines++;
        pos = eol + 1;
        if (len > max_line) {
            kind = KIND_OTHER; /* _decode counts it as oversized */
        }
        else if (settled(line, len, &kind)) {
            skipped++;
            continue;
        }
        else if (kind == KIND_ALERT && sids != Py_None) {
            PyObject *f = fields(line, len);
            if (f == NULL)
                goto fail;
            if (f != Py_None) {
                int ours = PySet_Contains(sids, PyTuple_GET_ITEM(f, 7));
                if (ours <= 0) {
                    Py_DECREF(f);
                    if (ours < 0)
                        goto fail;
                    foreign++;
                    continue;
                }
                if (append(items, kinds, f, KIND_FIELDS) < 0)
                    goto fail;
                continue;
            }
            Py_DECREF(f);
        }
        PyObject *bytes = PyBytes_FromStringAndSize(line, len);
        if (bytes == NULL || append(items, kinds, bytes, kind) < 0)
            goto fail;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nnnNN", lines, skipped, foreign, items, kinds);
fail:
    PyBuffer_Release(&view);
    Py_XDECREF(items);
    Py_XDECREF(kinds);
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
    while (p < c->end && *p >= '0' && *p <= '9' && n < 19) {
        v = v * 10 + (*p - '0');
        p++;
        n++;
    }
    if (n == 0 || n > 18 || (n > 1 && c->p[0] == '0'))
        return 0;
    if (p < c->end && *p >= '0' && *p <= '9')
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
        if (ch == '\\' || ch < 0x20)
            return 0;
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

/* -- the quoted probe of an ICMP error (decode.py: _b64 + packet.quoted_probe) ---------- */

#define PAYLOAD_MAX 1024

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
        return -1;
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

static PyObject *TCP, *ICMP, *ICMP6; /* interned protocol names */
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
        OPT_UINT(&c, "\"parent_id\":", &ignored) < 0)
        Py_RETURN_NONE;
    if (LIT(&c, "\"in_iface\":\"")) {
        if (!str_(&c, &iface, &iface_n, 0) || !LIT(&c, ","))
            Py_RETURN_NONE;
    }
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

    /* The rest of the line is not parsed. Suricata writes the sensor name ("host") as the
     * last key of the line, and an ICMP error's quoted probe as "payload" (base64). */
    const char *sensor = iface;
    Py_ssize_t sensor_n = iface_n;
    if (c.end - c.p >= 2 && c.end[-2] == '"') {
        const char *q = c.end - 2; /* closing quote of the last value */
        const char *o = q;
        while (o > c.p && o[-1] != '"')
            o--;
        if (o - c.p >= 2 && o[-2] == '\\')
            return fallback(); /* an escaped quote: let the full parse read it */
        static const char HOST[] = ",\"host\":\"";
        const Py_ssize_t hl = (Py_ssize_t)(sizeof(HOST) - 1);
        if (o - c.p >= hl && memcmp(o - hl, HOST, (size_t)hl) == 0) {
            Cur v = {o, c.end};
            if (!str_(&v, &s, &sn, 0) || v.p != c.end - 1)
                return fallback();
            sensor = s, sensor_n = sn;
        }
    }
    int qproto = -1, qport = -1;
    const unsigned char *qsrc = NULL;
    Py_ssize_t qsrc_n = 0;
    unsigned char raw[PAYLOAD_MAX];
    if (itype >= 0) {
        static const char PAY[] = ",\"payload\":\"";
        const char *pk = memmem(c.p, (size_t)(c.end - c.p), PAY, sizeof(PAY) - 1);
        if (pk == NULL)
            return fallback(); /* the full path looks at "packet" and warns */
        Cur v = {pk + sizeof(PAY) - 1, c.end};
        Py_ssize_t rawn;
        if (!str_(&v, &s, &sn, 0) || (rawn = b64(s, sn, raw)) < 0 ||
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
    if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        return fallback(); /* not UTF-8: the full parse counts it */
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
     "prefilter(buf, start, end, max_line, sids=None) -> (lines, skipped, foreign, items, kinds)"},
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
