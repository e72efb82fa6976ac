/* The opcode pre-pass of devpersist._opcodes, compiled: the same walk, verdicts,
 * exception classes, messages and limits, 20 to 90 times faster (security.md).
 *
 * devpersist/_opcodes.py is the reference; this file follows it branch by branch (the
 * comments name the Python it mirrors) and the tests run both on the same inputs. It is
 * an optional extension (setup.py): without a compiler the Python walker runs.
 *
 * Hostile input: every read of the stream is checked against its end before it is made;
 * sizes are size_t and every sum is checked; nothing recurses on the input's depth except
 * the freeing of a tuple's kids, whose chain MAX_TUPLE_DEPTH bounds; everything allocated
 * grows with the opcodes actually read (one stack, memo or mark slot per opcode, one box
 * per opcode that makes one), never with a number the stream states.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <math.h>
#include <stdint.h>
#include <string.h>

#if SIZEOF_PY_HASH_T != 8
#error "the tuple hash below is CPython's 64-bit one"
#endif

/* bound by bind(): the exception classes and limits of devpersist._opcodes */
static PyObject *IntegrityError, *FormatError, *ResourceLimitError;
static size_t MIN_OBJECT_BUDGET, BYTES_PER_OBJECT, MAX_SHARED_HASH, MAX_OPAQUE_KEYS,
    MAX_TUPLE_DEPTH;

/* ---- abstract values (Python: int, float, bool, None, TEXT, OPAQUE, _Box) ---- */
enum { V_NONE, V_BOOL, V_INT, V_BIG, V_FLOAT, V_TEXT, V_OPAQUE, V_BOX };

struct box;
typedef struct {
    uint8_t tag;
    size_t n;       /* V_BIG: length of the normalised little-endian bytes at u.p */
    Py_hash_t h;    /* V_BIG: its hash(), computed once */
    union {
        int64_t i;  /* V_INT, V_BOOL */
        double f;
        const uint8_t *p;
        struct box *b;
    } u;
} val;

/* a token: what the Python walker's hex()/float.hex()/interned tuple name tells apart */
enum { K_INT, K_FLOAT, K_BIG, K_TUPLE };
typedef struct {
    uint8_t kind;
    size_t n;
    union {
        int64_t i;
        uint64_t bits;
        const uint8_t *p;
    } u;
} tok;

typedef struct {
    Py_hash_t h;
    size_t count; /* distinct tokens with hash h; 0: free slot */
    tok first;
    tok *more;    /* count - 1 further tokens (at most MAX_SHARED_HASH) */
} entry;

typedef struct {
    size_t cap, used;
    entry *e;
} table;

enum { T_NONE, T_TEXT, T_NUM }; /* box.token: None, TEXT, a str */

typedef struct box {
    size_t refs;
    uint8_t keyed, token;
    int64_t tid;     /* T_NUM: the interned id of its value */
    Py_hash_t hash;  /* T_NUM: its hash() */
    size_t depth, opaque, nkids;
    struct box *kids[4];
    table *buckets;
} box;

static void box_decref(box *b);

static inline void val_incref(val v) {
    if (v.tag == V_BOX) v.u.b->refs++;
}
static inline void val_decref(val v) {
    if (v.tag == V_BOX) box_decref(v.u.b);
}

static void box_decref(box *b) {
    if (--b->refs) return;
    /* recursion: a kid is a box an earlier tuple held, so the chain is at most
     * MAX_TUPLE_DEPTH long (a deeper tuple is refused before it is kept) */
    for (size_t k = 0; k < b->nkids; k++) box_decref(b->kids[k]);
    if (b->buckets) {
        for (size_t i = 0; i < b->buckets->cap; i++) PyMem_Free(b->buckets->e[i].more);
        PyMem_Free(b->buckets->e);
        PyMem_Free(b->buckets);
    }
    PyMem_Free(b);
}

static box *box_new(uint8_t keyed) {
    box *b = PyMem_Calloc(1, sizeof(box));
    if (!b) {
        PyErr_NoMemory();
        return NULL;
    }
    b->refs = 1;
    b->keyed = keyed;
    b->depth = 1;
    return b;
}

/* ---- the walk's state ---- */
typedef struct {
    val *stack;
    size_t sn, scap;
    size_t *marks;
    size_t mn, mcap;
    val *memo;
    size_t memon, memocap;
    box *pending;        /* a tuple being built: freed if building it fails */
    PyObject *interned;  /* bytes naming a tuple's items -> its id (a dict: SipHash) */
    uint8_t *kbuf;
    size_t kcap;
    Py_hash_t *lanes; /* a tuple's items' hashes */
    size_t lcap;
    Py_hash_t none_hash;
    uint64_t seed;
} state;

static int grow(void **arr, size_t *cap, size_t need, size_t item) {
    if (need <= *cap) return 0;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need) {
        if (ncap > (SIZE_MAX / 2) / item) {
            PyErr_NoMemory();
            return -1;
        }
        ncap *= 2;
    }
    void *p = PyMem_Realloc(*arr, ncap * item);
    if (!p) {
        PyErr_NoMemory();
        return -1;
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

static int push(state *s, val v) { /* takes v's reference */
    if (grow((void **)&s->stack, &s->scap, s->sn + 1, sizeof(val)) < 0) {
        val_decref(v);
        return -1;
    }
    s->stack[s->sn++] = v;
    return 0;
}

static void truncate_stack(state *s, size_t start) {
    while (s->sn > start) val_decref(s->stack[--s->sn]);
}

/* ---- errors: the same classes and words as the Python walker ---- */
static int misuse(void) {
    PyErr_SetString(IntegrityError, "the object graph's stream misuses its stack");
    return -1;
}
static int integrity(const char *msg) {
    PyErr_SetString(IntegrityError, msg);
    return -1;
}
static int limit(const char *name, PyObject *message) { /* steals message */
    if (!message) return -1;
    PyObject *text = PyUnicode_FromFormat("the object graph %U (limit %s)", message, name);
    Py_DECREF(message);
    if (text) {
        PyErr_SetObject(ResourceLimitError, text);
        Py_DECREF(text);
    }
    return -1;
}
static int over_budget(size_t budget, size_t end) {
    return limit("MIN_OBJECT_BUDGET/BYTES_PER_OBJECT",
                 PyUnicode_FromFormat("creates more than %zu objects for a %zu-byte stream",
                                      budget, end));
}

/* ---- hashes: CPython's, for the values whose hash a file can choose ---- */
#define MODULUS ((uint64_t)0x1FFFFFFFFFFFFFFF) /* 2**61 - 1 */

static Py_hash_t hash_int64(int64_t v) {
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    Py_hash_t x = (Py_hash_t)(m % MODULUS);
    if (v < 0) x = -x;
    return x == -1 ? -2 : x;
}

static int hash_object(PyObject *o, Py_hash_t *out) { /* steals o */
    if (!o) return -1;
    *out = PyObject_Hash(o);
    Py_DECREF(o);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int hash_float(double f, Py_hash_t *out) {
    return hash_object(PyFloat_FromDouble(f), out);
}

static uint64_t float_bits(double f) {
    uint64_t b;
    memcpy(&b, &f, sizeof b);
    return b;
}

static Py_hash_t tuple_hash(const Py_hash_t *lanes, size_t n) { /* tupleobject.c */
    const uint64_t P1 = 11400714785074694791ULL, P2 = 14029467366897019727ULL,
                   P5 = 2870177450012600261ULL;
    uint64_t acc = P5;
    for (size_t i = 0; i < n; i++) {
        acc += (uint64_t)lanes[i] * P2;
        acc = (acc << 31) | (acc >> 33);
        acc *= P1;
    }
    acc += (uint64_t)n ^ (P5 ^ 3527539ULL);
    if (acc == UINT64_MAX) return 1546275796;
    return (Py_hash_t)acc;
}

/* ---- the hash-flood guard (Python: _add) ---- */
static int tok_eq(const tok *a, const tok *b) {
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case K_BIG:
        /* the same bytes (one LONG opcode, fetched from the memo): no need to look */
        return a->n == b->n && (a->u.p == b->u.p || memcmp(a->u.p, b->u.p, a->n) == 0);
    case K_FLOAT:
        return a->u.bits == b->u.bits;
    default:
        return a->u.i == b->u.i;
    }
}

static size_t slot_of(uint64_t seed, Py_hash_t h, size_t mask) {
    /* a keyed mix (splitmix64's finaliser): a file cannot aim hashes at one slot */
    uint64_t z = (uint64_t)h ^ seed;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (size_t)(z ^ (z >> 31)) & mask;
}

static entry *bucket(state *s, box *b, Py_hash_t h) {
    table *t = b->buckets;
    if (!t) {
        t = b->buckets = PyMem_Calloc(1, sizeof(table));
        if (!t) {
            PyErr_NoMemory();
            return NULL;
        }
    }
    if ((t->used + 1) * 3 > t->cap * 2) { /* keep the load under 2/3 */
        size_t ncap = t->cap ? t->cap * 2 : 8;
        if (ncap > SIZE_MAX / sizeof(entry)) {
            PyErr_NoMemory();
            return NULL;
        }
        entry *ne = PyMem_Calloc(ncap, sizeof(entry));
        if (!ne) {
            PyErr_NoMemory();
            return NULL;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->e[i].count) continue;
            size_t j = slot_of(s->seed, t->e[i].h, ncap - 1);
            while (ne[j].count) j = (j + 1) & (ncap - 1);
            ne[j] = t->e[i];
        }
        PyMem_Free(t->e);
        t->e = ne;
        t->cap = ncap;
    }
    size_t j = slot_of(s->seed, h, t->cap - 1);
    while (t->e[j].count && t->e[j].h != h) j = (j + 1) & (t->cap - 1);
    if (!t->e[j].count) t->used++;
    t->e[j].h = h;
    return &t->e[j];
}

static int add_token(state *s, box *b, Py_hash_t h, const tok *k) {
    entry *e = bucket(s, b, h);
    if (!e) return -1;
    if (!e->count) {
        e->first = *k;
        e->count = 1;
        return 0;
    }
    if (tok_eq(&e->first, k)) return 0;
    for (size_t i = 0; i + 1 < e->count; i++)
        if (tok_eq(&e->more[i], k)) return 0;
    if (e->count > MAX_SHARED_HASH)  /* unreachable: refused when it got there */
        return integrity("the object graph's hash bookkeeping overflowed");
    if (!e->more) {
        e->more = PyMem_Calloc(MAX_SHARED_HASH + 1, sizeof(tok));
        if (!e->more) {
            PyErr_NoMemory();
            return -1;
        }
    }
    e->more[e->count - 1] = *k;
    e->count++;
    if (e->count > MAX_SHARED_HASH)
        return limit("MAX_SHARED_HASH",
                     PyUnicode_FromFormat("puts more than %zu distinct numbers with one hash "
                                          "value in one container (a hash-collision flood)",
                                          MAX_SHARED_HASH));
    return 0;
}

static int add(state *s, box *b, val item, int keyed) {
    tok k;
    Py_hash_t h;
    switch (item.tag) {
    case V_FLOAT:
        if (isnan(item.u.f)) return 0; /* hash() is the object's address */
        if (hash_float(item.u.f, &h) < 0) return -1;
        k.kind = K_FLOAT;
        k.u.bits = float_bits(item.u.f);
        break;
    case V_INT:
    case V_BOOL: /* hex(True) == hex(1) */
        h = hash_int64(item.u.i);
        k.kind = K_INT;
        k.u.i = item.u.i;
        break;
    case V_BIG:
        h = item.h;
        k.kind = K_BIG;
        k.n = item.n;
        k.u.p = item.u.p;
        break;
    case V_BOX:
        if (item.u.b->token == T_NUM) {
            h = item.u.b->hash;
            k.kind = K_TUPLE;
            k.u.i = item.u.b->tid;
            break;
        }
        if (item.u.b->token == T_TEXT) return 0;
        goto opaque;
    case V_NONE:
    case V_TEXT:
        return 0;
    default:
    opaque:
        b->opaque++;
        if (keyed && b->opaque > MAX_OPAQUE_KEYS)
            return limit("MAX_OPAQUE_KEYS",
                         PyUnicode_FromFormat("puts more than %zu computed keys in one set or "
                                              "dict",
                                              MAX_OPAQUE_KEYS));
        return 0;
    }
    return add_token(s, b, h, &k);
}

/* ---- tuples (Python: _tuple) ---- */
static int key_put(state *s, size_t *len, uint8_t kind, const void *p, size_t n) {
    if (n > SIZE_MAX - 1 - *len) return (PyErr_NoMemory(), -1);
    if (grow((void **)&s->kbuf, &s->kcap, *len + 1 + n, 1) < 0) return -1;
    s->kbuf[(*len)++] = kind;
    if (n) memcpy(s->kbuf + *len, p, n); /* p may be NULL when n is 0 (None) */
    *len += n;
    return 0;
}

static box *make_tuple(state *s, const val *items, size_t n) {
    box *b = s->pending = box_new(0);
    if (!b) return NULL;
    int numeric = 1, text = 0;
    size_t depth = 0, klen = 0;
    if (grow((void **)&s->lanes, &s->lcap, n, sizeof(Py_hash_t)) < 0) return NULL;
    Py_hash_t *lanes = s->lanes;
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        val it = items[i];
        if (add(s, b, it, 0) < 0) {
            err = 1;
            break;
        }
        Py_hash_t h = 0;
        int r = 0;
        uint64_t bits;
        switch (it.tag) {
        case V_BOX:
            if (it.u.b->depth > depth) depth = it.u.b->depth;
            if (it.u.b->token == T_NUM) {
                h = it.u.b->hash;
                r = key_put(s, &klen, 't', &it.u.b->tid, sizeof(int64_t));
            } else if (it.u.b->token == T_TEXT) {
                text = 1, numeric = 0;
            } else {
                numeric = 0;
            }
            break;
        case V_TEXT:
            text = 1, numeric = 0;
            break;
        case V_FLOAT:
            if (isnan(it.u.f)) {
                text = 1, numeric = 0;
                break;
            }
            if (numeric) {
                bits = float_bits(it.u.f);
                r = hash_float(it.u.f, &h);
                if (r == 0) r = key_put(s, &klen, 'f', &bits, sizeof bits);
            }
            break;
        case V_INT:
            h = hash_int64(it.u.i);
            r = key_put(s, &klen, 'i', &it.u.i, sizeof(int64_t));
            break;
        case V_BIG:
            h = it.h;
            r = key_put(s, &klen, 'I', &it.n, sizeof(size_t));
            if (r == 0) r = key_put(s, &klen, ':', it.u.p, it.n);
            break;
        case V_BOOL: /* repr(True) is not hex(1) */
            h = it.u.i;
            r = key_put(s, &klen, 'b', &it.u.i, sizeof(int64_t));
            break;
        case V_NONE:
            h = s->none_hash;
            r = key_put(s, &klen, 'N', NULL, 0);
            break;
        default:
            numeric = 0;
        }
        if (r < 0) {
            err = 1;
            break;
        }
        lanes[i] = h;
    }
    if (err) return NULL;
    b->depth = depth + 1;
    if (n <= 4)
        for (size_t i = 0; i < n; i++)
            if (items[i].tag == V_BOX) {
                b->kids[b->nkids++] = items[i].u.b;
                items[i].u.b->refs++;
            }
    if (b->depth > MAX_TUPLE_DEPTH) {
        limit("MAX_TUPLE_DEPTH",
              PyUnicode_FromFormat("nests tuples deeper than %zu levels", MAX_TUPLE_DEPTH));
        return NULL;
    }
    if (text) {
        b->token = T_TEXT;
    } else if (numeric) {
        PyObject *key = PyBytes_FromStringAndSize((const char *)s->kbuf, (Py_ssize_t)klen);
        PyObject *id = key ? PyDict_GetItemWithError(s->interned, key) : NULL;
        if (!id && key && !PyErr_Occurred()) {
            id = PyLong_FromSsize_t(PyDict_GET_SIZE(s->interned));
            if (id && PyDict_SetItem(s->interned, key, id) < 0) Py_CLEAR(id);
            Py_XDECREF(id); /* the dict holds it */
        }
        if (id) b->tid = PyLong_AsLongLong(id);
        Py_XDECREF(key);
        if (!id || PyErr_Occurred()) return NULL;
        b->token = T_NUM;
        b->hash = tuple_hash(lanes, n);
    }
    s->pending = NULL;
    return b;
}

/* a tuple of stack[start:] replaces those items (Python: _tuple(stack[start:])) */
static int tuple_from(state *s, size_t start, size_t *spent, size_t budget, size_t end,
                      int count) {
    if (start > s->sn) start = s->sn;
    box *b = make_tuple(s, s->stack + start, s->sn - start);
    if (!b) return -1;
    s->pending = NULL;
    truncate_stack(s, start);
    val v = {.tag = V_BOX, .u.b = b};
    if (push(s, v) < 0) return -1;
    if (count && ++*spent > budget) return over_budget(budget, end);
    return 0;
}

static int check_call_args(val args) { /* Python: _check_call_args_box */
    if (args.tag != V_BOX) return 0;
    box *b = args.u.b;
    for (size_t k = 0; k <= b->nkids; k++) {
        box *x = k ? b->kids[k - 1] : b;
        if (x->opaque > MAX_OPAQUE_KEYS)
            return limit("MAX_OPAQUE_KEYS",
                         PyUnicode_FromFormat("passes more than %zu computed values in one "
                                              "container to a call",
                                              MAX_OPAQUE_KEYS));
    }
    return 0;
}

/* ---- opcode arguments: kind 0 none, 1 fixed, 2 length-prefixed, 3 one line, 4 two
 * lines; 255 unknown (Python: _ARGS) ---- */
static uint8_t KIND[256], SIZE[256];

static void init_tables(void) {
    memset(KIND, 255, sizeof KIND);
    const char *k0 = "NM\x88\x89]ael)t\x85\x86\x87}dsu\x8f\x90\x91"
                     "0(12\x94\x93Rbo\x81\x92.Q\x97\x98";
    for (const char *c = k0; *c; c++) KIND[(uint8_t)*c] = 0;
    struct { const char *codes; uint8_t kind, size; } rows[] = {
        {"K\x82hq\x80", 1, 1}, {"M\x83", 1, 2}, {"J\x84", 1, 4}, {"jr", 1, 4},
        {"G", 1, 8}, {"\x95", 1, 8}, {"\x8aUC\x8c", 2, 1}, {"\x8bTBX", 2, 4},
        {"\x8e\x96\x8d", 2, 8}, {"ILSFVgpP", 3, 0}, {"ci", 4, 0},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++)
        for (const char *c = rows[r].codes; *c; c++) {
            KIND[(uint8_t)*c] = rows[r].kind;
            SIZE[(uint8_t)*c] = rows[r].size;
        }
}

static uint64_t le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = (v << 8) | p[i];
    return v;
}

/* a LONG1/LONG4 argument: an int64, or normalised bytes and their hash */
static int read_long(const uint8_t *p, size_t n, val *out) {
    while (n > 1 && ((p[n - 1] == 0 && !(p[n - 2] & 0x80)) ||
                     (p[n - 1] == 0xff && (p[n - 2] & 0x80))))
        n--; /* drop sign-extension bytes: equal values, equal bytes */
    if (n <= 8) {
        uint64_t u = le(p, n);
        if (n && n < 8 && (p[n - 1] & 0x80)) u |= UINT64_MAX << (8 * n);
        out->tag = V_INT;
        out->u.i = (int64_t)u;
        return 0;
    }
#if PY_VERSION_HEX >= 0x030D0000
    PyObject *o = PyLong_FromNativeBytes(p, n, Py_ASNATIVEBYTES_LITTLE_ENDIAN);
#else
    PyObject *o = _PyLong_FromByteArray(p, n, 1, 1); /* little-endian, signed */
#endif
    out->tag = V_BIG;
    out->u.p = p;
    out->n = n;
    return hash_object(o, &out->h);
}

/* Python: _decimal(text) -> int(text.decode("ascii")); a new reference */
static PyObject *decimal(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] > 0x7f) goto bad;
    PyObject *text = PyUnicode_DecodeASCII((const char *)p, (Py_ssize_t)n, "strict");
    if (!text) goto bad;
    PyObject *v = PyLong_FromUnicodeObject(text, 10);
    Py_DECREF(text);
    if (v) return v;
bad:
    if (PyErr_Occurred() && !PyErr_ExceptionMatches(PyExc_ValueError) &&
        !PyErr_ExceptionMatches(PyExc_UnicodeDecodeError))
        return NULL;
    PyErr_Clear();
    PyErr_SetString(FormatError, "malformed memo index in the object graph");
    return NULL;
}

#define NEED_STACK(k) \
    if (s->sn < (k)) return misuse()
#define POP_MARK(var)                  \
    do {                               \
        if (!s->mn) return misuse();   \
        var = s->marks[--s->mn];       \
    } while (0)
#define SPEND(k)                                                      \
    do {                                                              \
        spent += (k);                                                 \
        if (spent > budget) return over_budget(budget, end);          \
    } while (0)

static int push_box(state *s, uint8_t keyed) {
    box *b = box_new(keyed);
    if (!b) return -1;
    val v = {.tag = V_BOX, .u.b = b};
    return push(s, v);
}

/* memo[index] = stack[-1] for PUT/BINPUT/LONG_BINPUT; index may be negative (PUT) */
static int memo_store(state *s, PyObject *index_obj, uint64_t index) {
    int neg = 0, over = 0;
    if (index_obj) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(index_obj, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (overflow > 0) over = 1;
        else if (overflow < 0 || v < 0) neg = 1;
        if (!over && !neg) index = (uint64_t)v;
        if (neg && !overflow) index = (uint64_t)0 - (uint64_t)v; /* magnitude */
        if (overflow < 0) index = UINT64_MAX;
    }
    if (!neg && (over || index > s->memon)) {
        PyObject *what = index_obj ? PyObject_Str(index_obj)
                                   : PyUnicode_FromFormat("%llu", (unsigned long long)index);
        if (!what) return -1;
        PyObject *msg = PyUnicode_FromFormat(
            "stores memo entry %U while only %zu exist (pickle numbers them in order)", what,
            s->memon);
        Py_DECREF(what);
        return limit("MEMO_IN_ORDER", msg);
    }
    NEED_STACK(1);
    val top = s->stack[s->sn - 1];
    if (!neg && index == s->memon) {
        if (grow((void **)&s->memo, &s->memocap, s->memon + 1, sizeof(val)) < 0) return -1;
        val_incref(top);
        s->memo[s->memon++] = top;
        return 0;
    }
    if (neg && index > s->memon) return misuse(); /* memo[-k] past its start */
    size_t at = neg ? s->memon - (size_t)index : (size_t)index;
    val_incref(top);
    val_decref(s->memo[at]);
    s->memo[at] = top;
    return 0;
}

static int memo_get(state *s, PyObject *index_obj, uint64_t index) {
    int ok = 0;
    if (index_obj) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(index_obj, &overflow);
        if (v == -1 && PyErr_Occurred()) return -1;
        if (!overflow && v >= 0 && (uint64_t)v < s->memon) {
            ok = 1;
            index = (uint64_t)v;
        }
    } else {
        ok = index < s->memon;
    }
    if (!ok) {
        PyObject *msg = index_obj
            ? PyUnicode_FromFormat("the object graph reads memo entry %S, never stored",
                                   index_obj)
            : PyUnicode_FromFormat("the object graph reads memo entry %llu, never stored",
                                   (unsigned long long)index);
        if (msg) {
            PyErr_SetObject(IntegrityError, msg);
            Py_DECREF(msg);
        }
        return -1;
    }
    val v = s->memo[index];
    val_incref(v);
    return push(s, v);
}

/* the walk (Python: precheck's loop); 0 at STOP, -1 with an exception set */
static int walk(state *s, const uint8_t *buf, size_t end) {
    size_t budget = end / BYTES_PER_OBJECT;
    if (budget < MIN_OBJECT_BUDGET) budget = MIN_OBJECT_BUDGET;
    size_t spent = 0, pos = 0;
    while (pos < end) {
        uint8_t code = buf[pos];
        uint8_t kind = KIND[code];
        pos++;
        uint64_t arg = 0;
        const uint8_t *line = NULL;
        size_t line_len = 0;
        val num = {.tag = V_NONE};
        if (kind == 255) {
            PyObject *msg = PyUnicode_FromFormat(
                "the object graph has an unknown opcode 0x%02x at %zu", (unsigned)code,
                pos - 1);
            if (msg) {
                PyErr_SetObject(IntegrityError, msg);
                Py_DECREF(msg);
            }
            return -1;
        } else if (kind == 1) {
            size_t size = SIZE[code];
            if (size > end - pos)
                return integrity("the object graph's stream ends inside an opcode");
            if (code == 'G') { /* >d */
                uint64_t b = 0;
                for (size_t i = 0; i < 8; i++) b = (b << 8) | buf[pos + i];
                memcpy(&num.u.f, &b, sizeof b);
                num.tag = V_FLOAT;
            } else {
                arg = le(buf + pos, size);
                if (code == 'J') { /* <i */
                    num.tag = V_INT;
                    num.u.i = (int32_t)(uint32_t)arg;
                } else {
                    num.tag = V_INT;
                    num.u.i = (int64_t)(arg & 0x7fffffffffffffffULL); /* unused beyond */
                }
            }
            pos += size;
        } else if (kind == 2) {
            size_t size = SIZE[code];
            if (size > end - pos)
                return integrity("the object graph's stream ends inside an opcode");
            uint64_t length = le(buf + pos, size);
            pos += size;
            if (length > end - pos)
                return integrity("an opcode's argument runs past the object graph's end");
            if (code == 0x8A || code == 0x8B) /* LONG1, LONG4 */
                if (read_long(buf + pos, (size_t)length, &num) < 0) return -1;
            pos += (size_t)length;
        } else if (kind >= 3) {
            for (int k = 0; k < kind - 2; k++) {
                const uint8_t *nl = memchr(buf + pos, '\n', end - pos);
                if (!nl) return integrity("the object graph's stream ends inside an opcode");
                line = buf + pos;
                line_len = (size_t)(nl - line);
                pos = (size_t)(nl - buf) + 1;
            }
        }

        switch (code) {
        case 0x68: case 0x6A: /* BINGET, LONG_BINGET */
            if (memo_get(s, NULL, arg) < 0) return -1;
            break;
        case 0x67: { /* GET */
            PyObject *i = decimal(line, line_len);
            if (!i) return -1;
            int r = memo_get(s, i, 0);
            Py_DECREF(i);
            if (r < 0) return -1;
            break;
        }
        case 0x94: /* MEMOIZE */
            NEED_STACK(1);
            if (memo_store(s, NULL, s->memon) < 0) return -1;
            break;
        case 0x71: case 0x72: /* BINPUT, LONG_BINPUT */
            if (memo_store(s, NULL, arg) < 0) return -1;
            break;
        case 0x70: { /* PUT */
            PyObject *i = decimal(line, line_len);
            if (!i) return -1;
            int r = memo_store(s, i, 0);
            Py_DECREF(i);
            if (r < 0) return -1;
            break;
        }
        case 0x4B: case 0x4D: case 0x4A: case 0x47: case 0x8A: case 0x8B:
            if (push(s, num) < 0) return -1; /* BININT1/2, BININT, BINFLOAT, LONG1/4 */
            break;
        case 0x4E: { /* NONE */
            val v = {.tag = V_NONE};
            if (push(s, v) < 0) return -1;
            break;
        }
        case 0x30: /* POP */
            if (s->sn && (!s->mn || s->marks[s->mn - 1] < s->sn)) {
                truncate_stack(s, s->sn - 1);
            } else {
                size_t m;
                POP_MARK(m);
                (void)m;
            }
            break;
        case 0x29: /* EMPTY_TUPLE */
            if (tuple_from(s, s->sn, &spent, budget, end, 0) < 0) return -1;
            break;
        case 0x5D: /* EMPTY_LIST */
            if (push_box(s, 0) < 0) return -1;
            SPEND(1);
            break;
        case 0x7D: case 0x8F: /* EMPTY_DICT, EMPTY_SET */
            if (push_box(s, 1) < 0) return -1;
            SPEND(2);
            break;
        case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
            val v = {.tag = V_BOOL, .u.i = code == 0x88};
            if (push(s, v) < 0) return -1;
            break;
        }
        case 0x28: /* MARK */
            if (grow((void **)&s->marks, &s->mcap, s->mn + 1, sizeof(size_t)) < 0) return -1;
            s->marks[s->mn++] = s->sn;
            break;
        case 0x51: /* BINPERSID */
            NEED_STACK(1);
            val_decref(s->stack[s->sn - 1]);
            s->stack[s->sn - 1].tag = V_OPAQUE;
            break;
        case 0x75: case 0x73: { /* SETITEMS, SETITEM */
            size_t start;
            if (code == 0x75) {
                POP_MARK(start);
            } else {
                if (s->sn < 3) return misuse();
                start = s->sn - 2;
            }
            if (start > s->sn) start = s->sn;
            if (!start) return misuse(); /* target = stack[-1] */
            val target = s->stack[start - 1];
            if ((s->sn - start) % 2) return integrity("SETITEMS with an odd number of items");
            if (target.tag == V_BOX)
                for (size_t i = start; i < s->sn; i += 2)
                    if (add(s, target.u.b, s->stack[i], 1) < 0) return -1;
            truncate_stack(s, start);
            break;
        }
        case 0x65: case 0x61: case 0x90: { /* APPENDS, APPEND, ADDITEMS */
            size_t start;
            if (code == 0x61) {
                if (s->sn < 2) return misuse();
                start = s->sn - 1;
            } else {
                POP_MARK(start);
            }
            if (start > s->sn) start = s->sn;
            if (!start) return misuse();
            val target = s->stack[start - 1];
            if (target.tag == V_BOX) {
                int keyed = code == 0x90 || target.u.b->keyed;
                for (size_t i = start; i < s->sn; i++)
                    if (add(s, target.u.b, s->stack[i], keyed) < 0) return -1;
            }
            truncate_stack(s, start);
            break;
        }
        case 0x85: case 0x86: case 0x87: case 0x74: { /* TUPLE1/2/3, TUPLE */
            size_t start;
            if (code == 0x74) {
                POP_MARK(start);
            } else {
                size_t k = (size_t)(code - 0x84);
                if (s->sn < k) return misuse();
                start = s->sn - k;
            }
            if (tuple_from(s, start, &spent, budget, end, 1) < 0) return -1;
            break;
        }
        case 0x62: /* BUILD */
            NEED_STACK(1);
            truncate_stack(s, s->sn - 1);
            NEED_STACK(1);
            break;
        case 0x52: case 0x81: case 0x92: { /* REDUCE, NEWOBJ, NEWOBJ_EX */
            NEED_STACK(1);
            if (code == 0x92) {
                truncate_stack(s, s->sn - 1); /* kwargs */
                NEED_STACK(1);
            }
            val args = s->stack[--s->sn];
            int r = check_call_args(args);
            val_decref(args);
            if (r < 0) return -1;
            NEED_STACK(1);
            box *b = box_new(0);
            if (!b) return -1;
            val_decref(s->stack[s->sn - 1]);
            s->stack[s->sn - 1].tag = V_BOX;
            s->stack[s->sn - 1].u.b = b;
            SPEND(1);
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            NEED_STACK(1);
            truncate_stack(s, s->sn - 1);
            NEED_STACK(1);
            val_decref(s->stack[s->sn - 1]);
            s->stack[s->sn - 1].tag = V_OPAQUE;
            break;
        case 0x63: case 0x82: case 0x83: case 0x84: /* GLOBAL, EXT1/2/4 */
        case 0x49: case 0x4C: case 0x46: case 0x50: { /* INT, LONG, FLOAT (text), PERSID */
            val v = {.tag = V_OPAQUE};
            if (push(s, v) < 0) return -1;
            break;
        }
        case 0x95: /* FRAME */
            if (arg > end - pos) return integrity("a FRAME runs past the object graph's end");
            break;
        case 0x80: /* PROTO */
            if (arg > 5) {
                PyObject *msg =
                    PyUnicode_FromFormat("pickle protocol %u is newer than 5", (unsigned)arg);
                if (msg) {
                    PyErr_SetObject(IntegrityError, msg);
                    Py_DECREF(msg);
                }
                return -1;
            }
            break;
        case 0x2E: /* STOP */
            NEED_STACK(1);
            return 0;
        case 0x31: { /* POP_MARK */
            size_t m;
            POP_MARK(m);
            if (m < s->sn) truncate_stack(s, m);
            break;
        }
        case 0x32: /* DUP */
            NEED_STACK(1);
            val_incref(s->stack[s->sn - 1]);
            if (push(s, s->stack[s->sn - 1]) < 0) return -1;
            break;
        case 0x6C: case 0x64: case 0x91: { /* LIST, DICT, FROZENSET */
            size_t start;
            POP_MARK(start);
            if (start > s->sn) start = s->sn;
            box *b = s->pending = box_new(code != 0x6C);
            if (!b) return -1;
            if (code == 0x6C) {
                SPEND(1);
            } else {
                SPEND(2);
                if (code == 0x64 && (s->sn - start) % 2)
                    return integrity("DICT with an odd number of items");
            }
            size_t step = code == 0x64 ? 2 : 1;
            for (size_t i = start; i < s->sn; i += step)
                if (add(s, b, s->stack[i], code != 0x6C) < 0) return -1;
            truncate_stack(s, start);
            s->pending = NULL;
            val v = {.tag = V_BOX, .u.b = b};
            if (push(s, v) < 0) return -1;
            break;
        }
        case 0x53: case 0x56: case 0x55: case 0x43: case 0x8C: case 0x54: case 0x42:
        case 0x58: case 0x8E: case 0x96: case 0x8D: { /* text and bytes */
            val v = {.tag = V_TEXT};
            if (push(s, v) < 0) return -1;
            break;
        }
        case 0x69: { /* INST */
            size_t m;
            POP_MARK(m);
            if (m < s->sn) truncate_stack(s, m);
            if (push_box(s, 0) < 0) return -1;
            SPEND(1);
            break;
        }
        case 0x6F: { /* OBJ */
            size_t m;
            POP_MARK(m);
            if (m >= s->sn) return misuse();
            truncate_stack(s, m);
            if (push_box(s, 0) < 0) return -1;
            SPEND(1);
            break;
        }
        case 0x97: case 0x98: /* NEXT_BUFFER, READONLY_BUFFER */
            return integrity("the object graph uses out-of-band buffers");
        default:
            return integrity("the object graph's pre-pass met an opcode it does not handle");
        }
    }
    return integrity("the object graph's stream has no STOP opcode");
}

static PyObject *precheck(PyObject *self, PyObject *data) {
    (void)self;
    if (!IntegrityError) {
        PyErr_SetString(PyExc_RuntimeError, "devpersist._opscan.bind() was not called");
        return NULL;
    }
    Py_buffer view;
    PyObject *copy = NULL;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) {
        if (!PyErr_ExceptionMatches(PyExc_BufferError)) return NULL;
        PyErr_Clear(); /* not contiguous: the Python walker copies it too (bytes(data)) */
        copy = PyBytes_FromObject(data);
        if (!copy) return NULL;
        if (PyObject_GetBuffer(copy, &view, PyBUF_SIMPLE) < 0) {
            Py_DECREF(copy);
            return NULL;
        }
    }
    state s;
    memset(&s, 0, sizeof s);
    int r = -1;
    s.interned = PyDict_New();
    s.none_hash = PyObject_Hash(Py_None);
    /* the slot mix's key: addresses differ per process (ASLR), and per call */
    static uint64_t counter;
    s.seed = ((uint64_t)(uintptr_t)&s << 16) ^ (uint64_t)(uintptr_t)&counter ^
             (++counter * 0x9e3779b97f4a7c15ULL);
    if (s.interned) r = walk(&s, (const uint8_t *)view.buf, (size_t)view.len);
    if (s.pending) box_decref(s.pending);
    truncate_stack(&s, 0);
    for (size_t i = 0; i < s.memon; i++) val_decref(s.memo[i]);
    PyMem_Free(s.stack);
    PyMem_Free(s.marks);
    PyMem_Free(s.memo);
    PyMem_Free(s.kbuf);
    PyMem_Free(s.lanes);
    Py_XDECREF(s.interned);
    PyBuffer_Release(&view);
    Py_XDECREF(copy);
    if (r < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *bind(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *ie, *fe, *re;
    Py_ssize_t a, b, c, d, e;
    if (!PyArg_ParseTuple(args, "OOOnnnnn", &ie, &fe, &re, &a, &b, &c, &d, &e)) return NULL;
    if (a < 0 || b < 1 || c < 1 || d < 0 || e < 1) {
        PyErr_SetString(PyExc_ValueError, "bind(): a limit out of range");
        return NULL;
    }
    Py_INCREF(ie);
    Py_INCREF(fe);
    Py_INCREF(re);
    Py_XSETREF(IntegrityError, ie);
    Py_XSETREF(FormatError, fe);
    Py_XSETREF(ResourceLimitError, re);
    MIN_OBJECT_BUDGET = (size_t)a;
    BYTES_PER_OBJECT = (size_t)b;
    MAX_SHARED_HASH = (size_t)c;
    MAX_OPAQUE_KEYS = (size_t)d;
    MAX_TUPLE_DEPTH = (size_t)e;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"precheck", precheck, METH_O, "The opcode pre-pass of devpersist._opcodes.precheck."},
    {"bind", bind, METH_VARARGS,
     "bind(IntegrityError, FormatError, ResourceLimitError, MIN_OBJECT_BUDGET, "
     "BYTES_PER_OBJECT, MAX_SHARED_HASH, MAX_OPAQUE_KEYS, MAX_TUPLE_DEPTH)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "devpersist._opscan",
    "The opcode pre-pass of devpersist._opcodes, compiled (see that module).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__opscan(void) {
    init_tables();
    return PyModule_Create(&module);
}
