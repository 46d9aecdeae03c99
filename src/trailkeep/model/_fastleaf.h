/*
 * trailkeep.model._fastleaf's own header: the types its sources share (Buffer, Row, Field,
 * Slice, Walk, Vouched, Tally), the small helpers of the hot loops as static inline (each source
 * inlines them as one file did), and the functions one source calls in another. Internal: every
 * name here is hidden in the built module, whose only export is PyInit__fastleaf.
 */
#ifndef TRAILKEEP_FASTLEAF_H
#define TRAILKEEP_FASTLEAF_H

#define PY_SSIZE_T_CLEAN
#define OPENSSL_API_COMPAT 0x10100000L /* SHA256_Init & co. without 3.0's deprecation notes */
#include <Python.h>
#include <openssl/sha.h>
#include <sqlite3.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SALT_SIZE 16
#define SALT_CHARS 24 /* 22 base64 characters and "==" */
#define MAX_SAFE_INTEGER 9007199254740991LL

#pragma GCC visibility push(hidden)

/* The tables of init_tables (_fastleaf.c). */
extern signed char b64_value[256]; /* -1 for bytes outside the standard alphabet */
/* bytes a JSON string cannot hold as they are: the quote, the backslash, controls; and 0x80+ */
extern unsigned char string_special[256];
extern char hex_pairs[512]; /* "000102...ff" */
extern signed char hex_value[256]; /* 0-15 for 0-9a-f (lowercase only), else -1 */
static const char hex_digits[] = "0123456789abcdef";

/* A docstring another source's method table names. */
#define FL_DOC(name, text) const char name[] = PyDoc_STR(text)

/* A byte buffer on the stack that moves to the heap when a message outgrows it: each message
 * (a field's salt and JCS bytes, the leaf text) is hashed in one go. */
typedef struct {
    unsigned char *data;
    size_t size, capacity;
    unsigned char local[2048];
} Buffer;

static inline void
buffer_init(Buffer *b)
{
    b->data = b->local;
    b->size = 0;
    b->capacity = sizeof b->local;
}

static inline void
buffer_free(Buffer *b)
{
    if (b->data != b->local) {
        PyMem_Free(b->data);
    }
}

/* buffer_reserve's rare part (_fastleaf_buffer.c). */
int __attribute__((noinline)) buffer_grow(Buffer *b, size_t extra);

/* Make room for `extra` more bytes; -1 with MemoryError set if there is none. */
static inline int
buffer_reserve(Buffer *b, size_t extra)
{
    if (__builtin_expect(b->size + extra <= b->capacity, 1)) {
        return 0;
    }
    return buffer_grow(b, extra);
}

/* memcpy for the short runs the leaf text is made of (paths, ids, a few words): up to 16
 * bytes by two overlapping loads and stores each, instead of a call per run. */
static inline void
copy_short(unsigned char *out, const void *bytes, size_t size)
{
    const unsigned char *in = bytes;
    if (size >= 8 && size <= 16) {
        uint64_t a, b;
        memcpy(&a, in, 8);
        memcpy(&b, in + size - 8, 8);
        memcpy(out, &a, 8);
        memcpy(out + size - 8, &b, 8);
    } else if (size >= 4 && size < 8) {
        uint32_t a, b;
        memcpy(&a, in, 4);
        memcpy(&b, in + size - 4, 4);
        memcpy(out, &a, 4);
        memcpy(out + size - 4, &b, 4);
    } else if (size < 4) {
        for (size_t i = 0; i < size; i++) {
            out[i] = in[i];
        }
    } else {
        memcpy(out, in, size);
    }
}

/* memcmp(a, b, n) == 0 for the short values compared per row (keys, query columns): up to 16
 * bytes by two overlapping loads each, instead of a call. */
static inline int
bytes_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    if (n >= 8 && n <= 16) {
        uint64_t x0, x1, y0, y1;
        memcpy(&x0, x, 8);
        memcpy(&x1, x + n - 8, 8);
        memcpy(&y0, y, 8);
        memcpy(&y1, y + n - 8, 8);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n >= 4 && n < 8) {
        uint32_t x0, x1, y0, y1;
        memcpy(&x0, x, 4);
        memcpy(&x1, x + n - 4, 4);
        memcpy(&y0, y, 4);
        memcpy(&y1, y + n - 4, 4);
        return ((x0 ^ y0) | (x1 ^ y1)) == 0;
    }
    if (n < 4) {
        for (size_t i = 0; i < n; i++) {
            if (x[i] != y[i]) {
                return 0;
            }
        }
        return 1;
    }
    return memcmp(a, b, n) == 0;
}

static inline int
buffer_add(Buffer *b, const void *bytes, size_t size)
{
    if (buffer_reserve(b, size) < 0) {
        return -1;
    }
    copy_short(b->data + b->size, bytes, size);
    b->size += size;
    return 0;
}
#define ADD(buffer, literal) buffer_add((buffer), (literal), sizeof(literal) - 1)
#define QUERY_COLUMN_COUNT 15
enum {
    F_SEQ, F_ID, F_RECEIVED_AT, F_BODY, F_SALTS, F_LEAF, F_REDACTIONS, F_MESSAGE, F_FIELDS,
    F_COLUMNS, F_COUNT = F_COLUMNS + QUERY_COLUMN_COUNT
};
#define MAX_FIELDS 128
#define ARENA_SIZE 8192

extern PyObject *SQLiteError; /* _fastleaf.SQLiteError */
/* interned dict keys, made at import (_fastleaf.c) */
extern PyObject *k_timestamp, *k_action, *k_category, *k_outcome, *k_actor, *k_target,
    *k_source, *k_session_id, *k_request_id, *k_trace_id, *k_idempotency_key, *k_message,
    *k_id, *k_email, *k_type, *k_ip, *k_client_id, *s_unknown, *s_event_redact;
typedef struct {
    sqlite3_stmt *stmt; /* a row of a stepped statement, or */
    PyObject *tuple;    /* a row as Store.audit_rows gives it, or */
    int merged;         /* stmt's (or values') leaf column is not its own but (if not NULL): */
    sqlite3_stmt *leaf; /* the leaf statement's row of the same seq, column 1 */
    sqlite3_value **values; /* a row as an aggregate's arguments (SQLiteRows' row-id order) */
    const char *leaf_hash;  /* merged, read with the chunk's other leaves: its 32 bytes */
} Row;

/* Column i of a row read from SQLite (stmt or values): NULL for SQL NULL of a merged leaf that
 * has no row. */
static inline sqlite3_value *
row_value(const Row *row, int i)
{
    if (i == F_LEAF && row->merged) {
        return row->leaf == NULL ? NULL : sqlite3_column_value(row->leaf, 1);
    }
    return row->values != NULL ? row->values[i] : sqlite3_column_value(row->stmt, i);
}

/* Whether a row comes from SQLite (not a tuple). */
static inline int
row_sqlite(const Row *row)
{
    return row->tuple == NULL;
}
static inline int
plain_ascii_bytes(const char *s, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7e || c == '"' || c == '\\') {
            return 0;
        }
    }
    return 1;
}

static inline int
received_at_bytes(const char *s, Py_ssize_t n)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (n != (Py_ssize_t)(sizeof form - 1)) {
        return 0;
    }
    for (size_t i = 0; i < sizeof form - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        if (form[i] == 'd' ? (c < '0' || c > '9') : c != (unsigned char)form[i]) {
            return 0;
        }
    }
    return 1;
}
typedef struct {
    const char *path;
    Py_ssize_t size;
    PyObject *value; /* borrowed from the content; or NULL and: */
    const char *jcs; /* scan_body: a string's UTF-8, or a number's or literal's JCS bytes */
    Py_ssize_t jcs_size;
    char kind; /* scan_body: the Slice kind */
    uint64_t head; /* the path's first 8 bytes, big-endian, zero-padded: sorts most pairs */
} Field;

/* A path's first 8 bytes as a big-endian number (zero-padded): in the order of the bytes. */
static inline uint64_t
path_head(const char *path, Py_ssize_t size)
{
    uint64_t head = 0;
    for (int i = 0; i < 8; i++) {
        head = head << 8 | (i < size ? (unsigned char)path[i] : 0);
    }
    return head;
}

/* A value as the body holds it (scan_body): its kind, and for a string its bytes between the
 * quotes, for a number its digits. */
typedef struct {
    const char *data;
    Py_ssize_t size;
    char kind; /* 0 absent, 's' string, 'n' number, 'b' true or false, 'z' null, 'o' other */
} Slice;

typedef struct {
    Field fields[MAX_FIELDS];
    int count;
    char arena[ARENA_SIZE]; /* "object.key" paths */
    size_t used;
    Buffer text; /* search_document's fields: the values' words, "\n" between */
    int parts;
    Slice columns[QUERY_COLUMN_COUNT]; /* scan_body: the values filter_values reads */
    Slice message;
    PyObject *last[QUERY_COLUMN_COUNT]; /* the column values last made, reused when equal */
    Slice expected[QUERY_COLUMN_COUNT]; /* check_scanned: the columns the content defines */
    int slices; /* check_scanned: hand those back (Vouched.columns), no objects made */
    char decoded[ARENA_SIZE]; /* strings of the body that had escapes, unescaped */
    size_t decoded_used;
} Walk;
static inline __attribute__((always_inline)) int
is_key(const char *s, Py_ssize_t n, const char *literal)
{
    /* inlined, a literal's strlen and memcmp are a few compares */
    return (size_t)n == strlen(literal) && memcmp(s, literal, (size_t)n) == 0;
}
#define KEY_IS(slice, literal) is_key((slice).data, (slice).size, (literal))

/* After an object's member, at *p: 2 past a "," (another member follows), 1 past the closing
 * "}" (the object is read), 0 at anything else (declined). */
static inline __attribute__((always_inline)) int
object_next(const char **p, const char *end)
{
    if (*p >= end || (**p != ',' && **p != '}')) {
        return 0;
    }
    return *(*p)++ == ',' ? 2 : 1;
}
typedef struct {
    long long seq;
    PyObject *counted; /* new reference: the query columns, as the content defines them; or */
    Slice *columns;    /* NULL, and these, as scanned (for a Tally: no object made) */
} Vouched;
#define TALLY_GROUPS 8
#define TALLY_COLUMNS 8

typedef struct {
    uint64_t hash;
    size_t offset; /* of the key in the arena */
    uint32_t size;
    long long count;
} TallySlot;

typedef struct {
    TallySlot *slots; /* open addressing; count 0: empty */
    size_t capacity, used;
    char *arena;
    size_t arena_used, arena_capacity;
} TallyTable;

typedef struct {
    PyObject_HEAD
    TallyTable table;
    TallyTable recent; /* the latest rows' counts, moved into `table` by tally_flush */
    Py_ssize_t ts_column;
    PyObject *total; /* the hour total's dimension name (storage._facets.HOUR_TOTAL) */
    int groups;
    int group_size[TALLY_GROUPS];
    Py_ssize_t columns[TALLY_GROUPS][TALLY_COLUMNS];
    PyObject *names[TALLY_GROUPS][TALLY_COLUMNS];
    char used[QUERY_COLUMN_COUNT]; /* the columns read: the timestamp and the groups' */
} Tally;

extern PyTypeObject TallyType, SQLiteRowsType;

/* _fastleaf_buffer.c */
int format_int(char *out, long long n);
int decode_salt(PyObject *text, unsigned char out[SALT_SIZE]);
int decode_salt_bytes(const unsigned char *s, Py_ssize_t size, unsigned char out[SALT_SIZE]);
void buffer_sha256(const Buffer *b, unsigned char digest[SHA256_DIGEST_LENGTH]);
int add_hex(Buffer *b, const unsigned char digest[SHA256_DIGEST_LENGTH]);
int add_jcs_utf8(Buffer *b, const char *utf8, Py_ssize_t size);

/* _fastleaf_leaf.c */
int add_text(Buffer *b, PyObject *text);
int add_commitment(Buffer *text, Buffer *field, PyObject *salt, const char *raw, PyObject *value);
int is_plain_ascii(PyObject *text);
int is_received_at(PyObject *text);
int add_positions(Buffer *text, PyObject *event_id, PyObject *received_at, long long seq,
                  PyObject *tenant_json);
PyObject *leaf(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *commit(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *prefix(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _fastleaf_rows.c */
int row_text(const Row *row, int i, const char **data, Py_ssize_t *size);
int row_blob(const Row *row, int i, const char **data, Py_ssize_t *size);
int sort_fields(Walk *w);
int leaf_matches(Walk *w, const char *salts, Py_ssize_t salts_size, const char *id,
                 Py_ssize_t id_size, const char *received_at, Py_ssize_t received_size,
                 long long seq, PyObject *tenant_json, const char *stored);
int check_row(const Row *row, PyObject *tenant_json, PyObject *loads, Walk *w, Vouched *out);

/* _fastleaf_json.c */
int scan_string(Walk *w, const char **p, const char *end, Slice *out);
int scan_scalar(Walk *w, const char **p, const char *end, Slice *out);
int scan_key(const char **p, const char *end, Slice *key);
int add_slice_field(Walk *w, const char *path, Py_ssize_t size, const Slice *value);
int scan_body(Walk *w, const char *body, Py_ssize_t size);
int bundle_members(Walk *w, const char **p, const char *end, const Slice *name);

/* _fastleaf_tally.c */
int tally_objects(Tally *t, PyObject *row);
int tally_slices(Tally *t, const Slice *columns);
typedef struct TallyMatch TallyMatch;
int tally_matches_statement(Tally *self, sqlite3_stmt *q, sqlite3 *db, TallyMatch **feeding);
int tally_match_values(TallyMatch *m, int argc, sqlite3_value **argv);

/* _fastleaf_sqlite.c */
Walk *walk_new(void);
void walk_free(Walk *w);
PyObject *check_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *sqlite_failed(sqlite3 *db, const char *doing);

/* _fastleaf_tree.c */
PyObject *parents(PyObject *module, PyObject *nodes);
PyObject *climb(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _fastleaf_sha2x.c: two one-block digests at once, where the CPU has SHA extensions */
extern int sha256_pairs; /* whether sha256_pair may be called */
void sha256_pairs_init(void);
void sha256_pad(unsigned char block[64], const unsigned char *message, size_t size);
void sha256_pair(const unsigned char *a, const unsigned char *b, unsigned char *da,
                 unsigned char *db);
PyObject *sha256_pair_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _fastleaf_bundle.c */
PyObject *bundle_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyObject *bundle_chunk(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* the docstrings of the module's functions, beside each */
extern const char leaf_doc[], commit_doc[], prefix_doc[], check_rows_doc[], parents_doc[],
    climb_doc[], bundle_chunk_doc[], bundle_events_doc[], sha256_pair_doc[];

#pragma GCC visibility pop

#endif
