/*
 * trailkeep.model._fastleaf: one event's RFC 9162 leaf hash in a single call, and the field
 * commitments of ingest in another.
 *
 * The inner loop of verifying a whole-tenant dump (DESIGN §3): for each field, decode its salt,
 * write the value's JCS bytes, c_p = SHA-256(salt || JCS(value)), and write hex(c_p) into the
 * leaf input's canonical text; then the positional fields, SHA-256 of it all, and compare with
 * the stored hash. In Python each field costs five calls (base64, orjson, SHA-256, hex, join);
 * here it costs a copy and one block of SHA-256. Ingest computes the same commitments over
 * fresh salts (commit()).
 *
 * It answers only for the common case and never differently from the Python code it replaces
 * (model/evidence.py's LeafRecomputer, proven byte-equal by tests/model/test_fastleaf.py):
 * values that are str, bool, or int within +-(2**53 - 1), and salts in canonical base64 of
 * 16 bytes. For anything else it returns None, and the caller takes the exact path.
 *
 * SHA-256 is OpenSSL's (the library hashlib uses), through SHA256_Init/Update/Final: in OpenSSL 3
 * the EVP API and the one-shot SHA256() fetch the algorithm from a provider on every digest,
 * which costs more than hashing a field.
 */
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

static signed char b64_value[256]; /* -1 for bytes outside the standard alphabet */
/* bytes a JSON string cannot hold as they are: the quote, the backslash, controls; and 0x80+ */
static unsigned char string_special[256];
static char hex_pairs[512]; /* "000102...ff" */
static signed char hex_value[256]; /* 0-15 for 0-9a-f (lowercase only), else -1 */
static const char hex_digits[] = "0123456789abcdef";

/* The decimal digits of n into out (at least 21 bytes); their count. snprintf's "%lld", without
 * its cost per call. */
static int
format_int(char *out, long long n)
{
    char digits[24];
    int length = 0;
    unsigned long long u = n < 0 ? 0ULL - (unsigned long long)n : (unsigned long long)n;
    do {
        digits[length++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    int at = 0;
    if (n < 0) {
        out[at++] = '-';
    }
    while (length) {
        out[at++] = digits[--length];
    }
    return at;
}

static void
init_tables(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_value, -1, sizeof b64_value);
    memset(hex_value, -1, sizeof hex_value);
    for (int c = 0; c < 16; c++) {
        hex_value[(unsigned char)hex_digits[c]] = (signed char)c;
    }
    for (int c = 0; c < 256; c++) {
        string_special[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
        hex_pairs[2 * c] = hex_digits[c >> 4];
        hex_pairs[2 * c + 1] = hex_digits[c & 0xf];
    }
    for (int i = 0; i < 64; i++) {
        b64_value[(unsigned char)alphabet[i]] = (signed char)i;
    }
}

static int decode_salt_bytes(const unsigned char *s, Py_ssize_t size, unsigned char out[SALT_SIZE]);

/* Decode a salt: 1 if `text` is the canonical base64 of 16 bytes, else 0. */
static int
decode_salt(PyObject *text, unsigned char out[SALT_SIZE])
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text)) {
        return 0;
    }
    return decode_salt_bytes(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), out);
}

/* decode_salt of the bytes of a salt's text. */
static int
decode_salt_bytes(const unsigned char *s, Py_ssize_t size, unsigned char out[SALT_SIZE])
{
    if (size != SALT_CHARS || s[22] != '=' || s[23] != '=') {
        return 0;
    }
    int v[22];
    for (int i = 0; i < 22; i++) {
        if ((v[i] = b64_value[s[i]]) < 0) {
            return 0;
        }
    }
    for (int q = 0; q < 5; q++) { /* five whole quads: 15 bytes */
        const int *g = v + 4 * q;
        out[3 * q] = (unsigned char)(g[0] << 2 | g[1] >> 4);
        out[3 * q + 1] = (unsigned char)((g[1] & 0xf) << 4 | g[2] >> 2);
        out[3 * q + 2] = (unsigned char)((g[2] & 0x3) << 6 | g[3]);
    }
    if (v[21] & 0xf) {
        return 0; /* bits past the 16th byte: not canonical (binascii would drop them) */
    }
    out[15] = (unsigned char)(v[20] << 2 | v[21] >> 4);
    return 1;
}

/* A byte buffer on the stack that moves to the heap when a message outgrows it: each message
 * (a field's salt and JCS bytes, the leaf text) is hashed in one go. */
typedef struct {
    unsigned char *data;
    size_t size, capacity;
    unsigned char local[2048];
} Buffer;

/* SHA-256 of a buffer. OpenSSL 3's one-shot SHA256() fetches the algorithm from a provider on
 * every call, which costs more than hashing a field: the context functions do not. */
static void
buffer_sha256(const Buffer *b, unsigned char digest[SHA256_DIGEST_LENGTH])
{
    if (b->size <= 55) {
        /* one block (a field's salt and short value): padded here and compressed once by
         * SHA256_Transform, without Update's copy and Final's second pass */
        static const SHA_LONG start[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                          0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
        unsigned char block[64];
        /* a Buffer holds at least 2048 bytes (local, or grown past it): 56 can be read */
        memcpy(block, b->data, 56);
        block[b->size] = 0x80;
        for (size_t i = b->size + 1; i < 56; i++) {
            block[i] = 0;
        }
        uint64_t bits = (uint64_t)b->size * 8;
        for (int i = 0; i < 8; i++) {
            block[63 - i] = (unsigned char)(bits >> (8 * i));
        }
        SHA256_CTX ctx;
        memcpy(ctx.h, start, sizeof start);
        SHA256_Transform(&ctx, block);
        for (int i = 0; i < 8; i++) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            uint32_t h = __builtin_bswap32((uint32_t)ctx.h[i]); /* big-endian */
            memcpy(digest + 4 * i, &h, 4);
#else
            for (int k = 0; k < 4; k++) {
                digest[4 * i + k] = (unsigned char)(ctx.h[i] >> (24 - 8 * k));
            }
#endif
        }
        return;
    }
    SHA256_CTX ctx;
    SHA256_Init(&ctx);
    SHA256_Update(&ctx, b->data, b->size);
    SHA256_Final(digest, &ctx);
}

static void
buffer_init(Buffer *b)
{
    b->data = b->local;
    b->size = 0;
    b->capacity = sizeof b->local;
}

static void
buffer_free(Buffer *b)
{
    if (b->data != b->local) {
        PyMem_Free(b->data);
    }
}

/* buffer_reserve's rare part: the buffer moves to (a larger part of) the heap. */
static int __attribute__((noinline))
buffer_grow(Buffer *b, size_t extra)
{
    size_t capacity = 2 * (b->size + extra);
    unsigned char *data = PyMem_Malloc(capacity);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    memcpy(data, b->data, b->size);
    buffer_free(b);
    b->data = data;
    b->capacity = capacity;
    return 0;
}

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

/* Append a SHA-256 digest as 64 lowercase hex characters; -1 on a memory error. */
static int
add_hex(Buffer *b, const unsigned char digest[SHA256_DIGEST_LENGTH])
{
    if (buffer_reserve(b, 2 * SHA256_DIGEST_LENGTH) < 0) {
        return -1;
    }
    unsigned char *out = b->data + b->size;
#ifdef __SSE2__
    /* 16 bytes at a time: their nibbles interleaved, each made a digit or a letter */
    const __m128i low4 = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9),
                  zero = _mm_set1_epi8('0'), gap = _mm_set1_epi8('a' - '0' - 10);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(digest + i));
        __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4), lo = _mm_and_si128(v, low4);
        __m128i pairs[2] = {_mm_unpacklo_epi8(hi, lo), _mm_unpackhi_epi8(hi, lo)};
        for (int k = 0; k < 2; k++) {
            __m128i n = pairs[k];
            __m128i letters = _mm_and_si128(_mm_cmpgt_epi8(n, nine), gap);
            n = _mm_add_epi8(_mm_add_epi8(n, zero), letters);
            _mm_storeu_si128((__m128i *)(out + 2 * i + 16 * k), n);
        }
    }
#else
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        memcpy(out + 2 * i, hex_pairs + 2 * digest[i], 2);
    }
#endif
    b->size += 2 * SHA256_DIGEST_LENGTH;
    return 0;
}

/* Append the JCS form (RFC 8785 §3.2.2.2) of a string given as UTF-8: -1 on a memory error. */
static int
add_jcs_utf8(Buffer *b, const char *utf8, Py_ssize_t size)
{
    /* the longest it can get: every byte a \u00XX escape, and the quotes */
    if (buffer_reserve(b, 6 * (size_t)size + 2) < 0) {
        return -1;
    }
    unsigned char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            Py_ssize_t run = i + 1; /* the plain bytes from here, copied at once */
            while (run < size && (unsigned char)utf8[run] >= 0x20 && utf8[run] != '"' &&
                   utf8[run] != '\\') {
                run++;
            }
            memcpy(out, utf8 + i, (size_t)(run - i));
            out += run - i;
            i = run - 1;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            memcpy(out, "u00", 3);
            out[3] = (unsigned char)hex_digits[c >> 4];
            out[4] = (unsigned char)hex_digits[c & 0xf];
            out += 5;
        }
    }
    *out++ = '"';
    b->size = (size_t)(out - b->data);
    return 0;
}

/* Append a str's JCS form: 1 if done, 0 if it has none (a lone surrogate), -1 on a memory
 * error. */
static int
add_string(Buffer *b, PyObject *value)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
    if (utf8 == NULL) {
        PyErr_Clear();
        return 0;
    }
    return add_jcs_utf8(b, utf8, size) < 0 ? -1 : 1;
}

/* Append a value's JCS form: 1 if done, 0 if the value is not one this module writes, -1 on a
 * memory error. */
static int
add_value(Buffer *b, PyObject *value)
{
    if (PyUnicode_CheckExact(value)) {
        return add_string(b, value);
    }
    if (value == Py_True) {
        return buffer_add(b, "true", 4) < 0 ? -1 : 1;
    }
    if (value == Py_False) {
        return buffer_add(b, "false", 5) < 0 ? -1 : 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || n > MAX_SAFE_INTEGER || n < -MAX_SAFE_INTEGER) {
            return 0; /* -1 is never an error here: an exact int always converts or overflows */
        }
        char digits[24];
        int length = format_int(digits, n);
        return buffer_add(b, digits, (size_t)length) < 0 ? -1 : 1;
    }
    return 0;
}

/* Append a str as UTF-8; -1 with an exception set if it has none. */
static int
add_text(Buffer *b, PyObject *text)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(text, &size);
    if (utf8 == NULL) {
        return -1;
    }
    return buffer_add(b, utf8, (size_t)size);
}

/* Append hex(SHA-256(salt || JCS(value))) to `text`: 1 if done, 0 if the salt or the value is
 * not of the common case, -1 with an exception set. */
static int
add_commitment(Buffer *text, Buffer *field, PyObject *salt, const char *raw, PyObject *value)
{
    field->size = SALT_SIZE;
    if (raw != NULL) { /* a packed salt, as a database row stores it */
        memcpy(field->data, raw, SALT_SIZE);
    } else if (!decode_salt(salt, field->data)) {
        return 0;
    }
    int added = add_value(field, value);
    if (added <= 0) {
        return added;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    buffer_sha256(field, digest);
    return add_hex(text, digest) < 0 ? -1 : 1;
}

/* Whether JSON writes `text` as itself in quotes: printable ASCII, no quote, no backslash. */
static int
is_plain_ascii(PyObject *text)
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text)) {
        return 0;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(text);
    for (Py_ssize_t i = 0, n = PyUnicode_GET_LENGTH(text); i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '"' || s[i] == '\\') {
            return 0;
        }
    }
    return 1;
}

/* Whether `text` is a server timestamp, YYYY-MM-DDTHH:MM:SS.ffffffZ (ASCII digits). */
static int
is_received_at(PyObject *text)
{
    static const char form[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text) ||
        PyUnicode_GET_LENGTH(text) != (Py_ssize_t)(sizeof form - 1)) {
        return 0;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(text);
    for (size_t i = 0; i < sizeof form - 1; i++) {
        if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != (unsigned char)form[i]) {
            return 0;
        }
    }
    return 1;
}

#define ADD(buffer, literal) buffer_add((buffer), (literal), sizeof(literal) - 1)

/* The leaf input of DESIGN §3, version 1, after the commitments: -1 on a memory error. */
static int
add_positions(Buffer *text, PyObject *event_id, PyObject *received_at, long long seq,
              PyObject *tenant_json)
{
    char digits[24];
    int length = format_int(digits, seq);
    if (ADD(text, "},\"id\":\"") < 0 || add_text(text, event_id) < 0 ||
        ADD(text, "\",\"received_at\":\"") < 0 || add_text(text, received_at) < 0 ||
        ADD(text, "\",\"seq\":") < 0 || buffer_add(text, digits, (size_t)length) < 0 ||
        ADD(text, ",\"tenant_id\":") < 0 || add_text(text, tenant_json) < 0 ||
        ADD(text, ",\"v\":1}") < 0) {
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(leaf_doc,
"leaf(keys, salts, values, event_id, received_at, seq, tenant_json, expected, /)\n--\n\n"
"An event's RFC 9162 leaf hash (DESIGN §3, leaf version 1) if its hex is `expected`.\n\n"
"keys are the field paths as JSON strings, in JCS order; salts (base64) and values are theirs,\n"
"in the same order; tenant_json is the tenant id as a JSON string. None when the hash differs,\n"
"salts may also be one bytes object of 16 bytes per key (the salts packed, as a database row\n"
"stores them), and expected the 32 bytes of the hash rather than its hex.\n"
"and whenever the event is not of the common case: a salt that is not the canonical base64 of\n"
"16 bytes; a value that is not a str with a JCS form, a bool, or an int within\n"
"+-(2**53 - 1); an event id that is not printable ASCII free of quotes and backslashes;\n"
"received_at not in the form YYYY-MM-DDTHH:MM:SS.ffffffZ; seq not an int in [0, 2**53 - 1].");

static PyObject *
leaf(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 8) {
        PyErr_Format(PyExc_TypeError, "leaf() takes 8 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *keys = args[0], *salts = args[1], *values = args[2];
    PyObject *event_id = args[3], *received_at = args[4], *seq = args[5];
    PyObject *tenant_json = args[6], *expected = args[7];
    int packed = PyBytes_CheckExact(salts);
    if (!PyTuple_CheckExact(keys) || !(packed || PyTuple_CheckExact(salts)) ||
        !PyTuple_CheckExact(values) || !PyUnicode_Check(tenant_json)) {
        PyErr_SetString(PyExc_TypeError,
                        "leaf() takes three tuples (or salts as bytes), then tenant_json a str");
        return NULL;
    }
    Py_ssize_t count = PyTuple_GET_SIZE(keys);
    if ((!packed && PyTuple_GET_SIZE(salts) != count) || PyTuple_GET_SIZE(values) != count) {
        PyErr_SetString(PyExc_ValueError, "leaf() takes as many salts and values as keys");
        return NULL;
    }
    if (packed && PyBytes_GET_SIZE(salts) != count * SALT_SIZE) {
        Py_RETURN_NONE; /* not one salt per key: only the exact path can say what is wrong */
    }
    int raw_expected = PyBytes_CheckExact(expected);
    if (!is_plain_ascii(event_id) || !is_received_at(received_at) || !PyLong_CheckExact(seq) ||
        (raw_expected ? PyBytes_GET_SIZE(expected) != SHA256_DIGEST_LENGTH
                      : (!PyUnicode_CheckExact(expected) || !PyUnicode_IS_COMPACT_ASCII(expected) ||
                         PyUnicode_GET_LENGTH(expected) != 2 * SHA256_DIGEST_LENGTH))) {
        Py_RETURN_NONE;
    }
    int overflow;
    long long position = PyLong_AsLongLongAndOverflow(seq, &overflow);
    if (overflow || position < 0 || position > MAX_SAFE_INTEGER) {
        Py_RETURN_NONE;
    }
    Buffer text, field;
    buffer_init(&text);
    buffer_init(&field);
    PyObject *result = NULL;
    if (ADD(&text, "\x00{\"commitments\":{") < 0) {
        goto done;
    }
    for (Py_ssize_t n = 0; n < count; n++) {
        PyObject *key = PyTuple_GET_ITEM(keys, n);
        if (!PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "leaf() keys are str");
            goto done;
        }
        if ((n && ADD(&text, ",") < 0) || add_text(&text, key) < 0 || ADD(&text, ":\"") < 0) {
            goto done;
        }
        int added = packed ? add_commitment(&text, &field, NULL,
                                            PyBytes_AS_STRING(salts) + n * SALT_SIZE,
                                            PyTuple_GET_ITEM(values, n))
                           : add_commitment(&text, &field, PyTuple_GET_ITEM(salts, n), NULL,
                                            PyTuple_GET_ITEM(values, n));
        if (added < 0 || (added && ADD(&text, "\"") < 0)) {
            goto done;
        }
        if (added == 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    if (add_positions(&text, event_id, received_at, position, tenant_json) < 0) {
        goto done;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    buffer_sha256(&text, digest);
    if (raw_expected) {
        if (memcmp(PyBytes_AS_STRING(expected), digest, SHA256_DIGEST_LENGTH) != 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        result = Py_NewRef(expected);
        goto done;
    }
    const unsigned char *want = PyUnicode_1BYTE_DATA(expected);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        if (want[2 * i] != hex_digits[digest[i] >> 4] ||
            want[2 * i + 1] != hex_digits[digest[i] & 0xf]) {
            result = Py_NewRef(Py_None);
            goto done;
        }
    }
    result = PyBytes_FromStringAndSize((const char *)digest, SHA256_DIGEST_LENGTH);
done:
    buffer_free(&text);
    buffer_free(&field);
    return result;
}

PyDoc_STRVAR(commit_doc,
"commit(paths, values, pool, /)\n--\n\n"
"Ingest's salts and field commitments: for the n-th path p of the list `paths`, the salt\n"
"pool[16n:16n + 16] and SHA-256(salt + JCS(values[p])), as two dicts in the order of `paths`.\n"
"None if a value is not a str with a JCS form, a bool, or an int within +-(2**53 - 1).");

static PyObject *
commit(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "commit() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *paths = args[0], *values = args[1], *pool = args[2];
    if (!PyList_CheckExact(paths) || !PyDict_Check(values) || !PyBytes_CheckExact(pool)) {
        PyErr_SetString(PyExc_TypeError, "commit() takes a list, a dict and bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(paths);
    if (PyBytes_GET_SIZE(pool) != count * SALT_SIZE) {
        PyErr_SetString(PyExc_ValueError, "commit() takes 16 bytes of pool per path");
        return NULL;
    }
    PyObject *salts = PyDict_New(), *commitments = PyDict_New(), *result = NULL;
    Buffer field;
    buffer_init(&field);
    if (salts == NULL || commitments == NULL) {
        goto done;
    }
    const char *bytes = PyBytes_AS_STRING(pool);
    for (Py_ssize_t n = 0; n < count; n++) {
        PyObject *path = PyList_GET_ITEM(paths, n);
        PyObject *value = PyDict_GetItemWithError(values, path); /* borrowed */
        if (value == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetObject(PyExc_KeyError, path);
            }
            goto done;
        }
        const char *salt = bytes + n * SALT_SIZE;
        field.size = 0;
        int added = buffer_add(&field, salt, SALT_SIZE) < 0 ? -1 : add_value(&field, value);
        if (added <= 0) {
            result = added < 0 ? NULL : Py_NewRef(Py_None);
            goto done;
        }
        unsigned char digest[SHA256_DIGEST_LENGTH];
        buffer_sha256(&field, digest);
        PyObject *salt_bytes = PyBytes_FromStringAndSize(salt, SALT_SIZE);
        PyObject *digest_bytes = PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
        int failed = salt_bytes == NULL || digest_bytes == NULL ||
                     PyDict_SetItem(salts, path, salt_bytes) < 0 ||
                     PyDict_SetItem(commitments, path, digest_bytes) < 0;
        Py_XDECREF(salt_bytes);
        Py_XDECREF(digest_bytes);
        if (failed) {
            goto done;
        }
    }
    result = PyTuple_Pack(2, salts, commitments);
done:
    buffer_free(&field);
    Py_XDECREF(salts);
    Py_XDECREF(commitments);
    return result;
}

PyDoc_STRVAR(prefix_doc,
"prefix(commitments, event_id, received_at, /)\n--\n\n"
"The leaf input up to its seq, as commitments.leaf_prefix writes it: b'{\"commitments\":{...},\n"
"\"id\":...,\"received_at\":...,\"seq\":'. None unless every path is printable ASCII free of quotes\n"
"and backslashes, the paths come in strictly increasing order (as JCS orders them), every\n"
"commitment is 32 bytes, the event id is such ASCII too and received_at is in the form\n"
"YYYY-MM-DDTHH:MM:SS.ffffffZ.");

static PyObject *
prefix(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "prefix() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *commitments = args[0], *event_id = args[1], *received_at = args[2];
    if (!PyDict_CheckExact(commitments)) {
        PyErr_SetString(PyExc_TypeError, "prefix() takes a dict of commitments");
        return NULL;
    }
    if (!is_plain_ascii(event_id) || !is_received_at(received_at)) {
        Py_RETURN_NONE;
    }
    Buffer text;
    buffer_init(&text);
    PyObject *result = NULL, *path, *digest, *last = NULL;
    Py_ssize_t at = 0, n = 0;
    if (ADD(&text, "{\"commitments\":{") < 0) {
        goto done;
    }
    while (PyDict_Next(commitments, &at, &path, &digest)) {
        if (!is_plain_ascii(path) || !PyBytes_CheckExact(digest) ||
            PyBytes_GET_SIZE(digest) != SHA256_DIGEST_LENGTH ||
            (last != NULL && PyUnicode_Compare(last, path) >= 0)) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        last = path;
        if ((n++ && ADD(&text, ",") < 0) || ADD(&text, "\"") < 0 ||
            add_text(&text, path) < 0 || ADD(&text, "\":\"") < 0 ||
            add_hex(&text, (const unsigned char *)PyBytes_AS_STRING(digest)) < 0 ||
            ADD(&text, "\"") < 0) {
            goto done;
        }
    }
    if (ADD(&text, "},\"id\":\"") < 0 || add_text(&text, event_id) < 0 ||
        ADD(&text, "\",\"received_at\":\"") < 0 || add_text(&text, received_at) < 0 ||
        ADD(&text, "\",\"seq\":") < 0) {
        goto done;
    }
    result = PyBytes_FromStringAndSize((const char *)text.data, (Py_ssize_t)text.size);
done:
    buffer_free(&text);
    return result;
}

/* ---- verify database: a stored row's whole check in one call ------------------------------
 *
 * service/audit checks each stored row of a tenant: its body and packed salts against its stored
 * leaf hash (DESIGN §3), its query columns against storage.rows.filter_values(content), its
 * full-text row against query.fulltext.search_document(content). Those Python functions stay the
 * reference (and the path for everything below that is not the common case); this part only
 * *vouches* for a row for which all of them agree, and declines every other row, which the
 * caller then checks the exact way. A row is vouched for only if:
 *
 * - it has no erasures (redactions NULL), and its action is not event.redact (both need the
 *   redaction ledger's Python path);
 * - its body parses (the caller's `loads`) to a dict whose keys are printable ASCII free of
 *   quotes and backslashes, none a server field or holding a dot; each committed object's keys
 *   likewise; every committed value a str, bool or safe int (add_value);
 * - the leaf written from the packed salts, in the sorted order of the paths, is the stored one;
 * - each query column is the content's value (NULL for None), byte for byte;
 * - the full-text message and fields are search_document's, byte for byte.
 *
 * The row comes from a stepped SQLite statement (SQLiteRows: no Python object for the columns
 * it compares) or from a tuple of Store.audit_rows (check_rows); both in AUDIT_FIELDS order.
 */

#define QUERY_COLUMN_COUNT 15
enum {
    F_SEQ, F_ID, F_RECEIVED_AT, F_BODY, F_SALTS, F_LEAF, F_REDACTIONS, F_MESSAGE, F_FIELDS,
    F_COLUMNS, F_COUNT = F_COLUMNS + QUERY_COLUMN_COUNT
};
#define MAX_FIELDS 128
#define ARENA_SIZE 8192

static PyObject *SQLiteError; /* _fastleaf.SQLiteError */
/* interned dict keys, made at import */
static PyObject *k_timestamp, *k_action, *k_category, *k_outcome, *k_actor, *k_target, *k_source,
    *k_session_id, *k_request_id, *k_trace_id, *k_idempotency_key, *k_message, *k_id, *k_email,
    *k_type, *k_ip, *k_client_id, *s_unknown, *s_event_redact;

typedef struct {
    sqlite3_stmt *stmt; /* a row of a stepped statement, or */
    PyObject *tuple;    /* a row as Store.audit_rows gives it */
    int merged;         /* stmt's leaf column is not its own but (if not NULL): */
    sqlite3_stmt *leaf; /* the leaf statement's row of the same seq, column 1 */
} Row;

/* Where column i of a stepped row is: its statement and column, or NULL for SQL NULL (a
 * merged leaf that has no row). */
static sqlite3_stmt *
row_column(const Row *row, int *i)
{
    if (*i == F_LEAF && row->merged) {
        *i = 1;
        return row->leaf;
    }
    return row->stmt;
}

static int
row_null(const Row *row, int i)
{
    if (row->stmt) {
        sqlite3_stmt *s = row_column(row, &i);
        return s == NULL || sqlite3_value_type(sqlite3_column_value(s, i)) == SQLITE_NULL;
    }
    return PyTuple_GET_ITEM(row->tuple, i) == Py_None;
}

/* 1 with the UTF-8 bytes if column i is text, else 0 (no exception).
 *
 * A stepped row's column is read through one sqlite3_column_value() and the value's own
 * accessors, instead of three sqlite3_column_*() calls (each with its sqlite3ApiExit()); its
 * text as a blob, which never converts (the same bytes in trailkeep's databases, which are
 * UTF-8; in one of another encoding they are UTF-16, and no row matches: each takes the exact
 * path). */
static int
row_text(const Row *row, int i, const char **data, Py_ssize_t *size)
{
    if (row->stmt) {
        sqlite3_value *v = sqlite3_column_value(row->stmt, i);
        if (sqlite3_value_type(v) != SQLITE_TEXT) {
            return 0;
        }
        *data = (const char *)sqlite3_value_blob(v);
        *size = sqlite3_value_bytes(v);
        if (*data == NULL) {
            *data = ""; /* the empty string */
        }
        return 1;
    }
    PyObject *value = PyTuple_GET_ITEM(row->tuple, i);
    if (!PyUnicode_CheckExact(value)) {
        return 0;
    }
    *data = PyUnicode_AsUTF8AndSize(value, size);
    if (*data == NULL) {
        PyErr_Clear();
        return 0;
    }
    return 1;
}

/* 1 with the bytes if column i is a blob (bytes), else 0. */
static int
row_blob(const Row *row, int i, const char **data, Py_ssize_t *size)
{
    if (row->stmt) {
        sqlite3_stmt *s = row_column(row, &i);
        sqlite3_value *v = s == NULL ? NULL : sqlite3_column_value(s, i);
        if (v == NULL || sqlite3_value_type(v) != SQLITE_BLOB) {
            return 0;
        }
        *data = (const char *)sqlite3_value_blob(v);
        *size = sqlite3_value_bytes(v);
        if (*data == NULL) {
            *data = "";
        }
        return 1;
    }
    PyObject *value = PyTuple_GET_ITEM(row->tuple, i);
    if (!PyBytes_CheckExact(value)) {
        return 0;
    }
    *data = PyBytes_AS_STRING(value);
    *size = PyBytes_GET_SIZE(value);
    return 1;
}

static int
row_int(const Row *row, int i, long long *out)
{
    if (row->stmt) {
        sqlite3_value *v = sqlite3_column_value(row->stmt, i);
        if (sqlite3_value_type(v) != SQLITE_INTEGER) {
            return 0;
        }
        *out = sqlite3_value_int64(v);
        return 1;
    }
    PyObject *value = PyTuple_GET_ITEM(row->tuple, i);
    int overflow;
    if (!PyLong_CheckExact(value)) {
        return 0;
    }
    *out = PyLong_AsLongLongAndOverflow(value, &overflow);
    return !overflow;
}

static int
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

static int
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

/* Whether a str equals the given UTF-8 bytes; -1 never (a str with no UTF-8 is unequal). */
static int
str_equals(PyObject *value, const char *data, Py_ssize_t size)
{
    Py_ssize_t n;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &n);
    if (utf8 == NULL) {
        PyErr_Clear();
        return 0;
    }
    return n == size && memcmp(utf8, data, (size_t)size) == 0;
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
static uint64_t
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

/* One value's words for the full text (query.fulltext._leaves): 1, or 0 for a value this part
 * does not write (a float, a list, an object: the exact path), -1 on a memory error. */
static int
add_words(Walk *w, PyObject *value)
{
    if (value == Py_True || value == Py_False) {
        return 1;
    }
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t size;
        const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
        if (utf8 == NULL) {
            PyErr_Clear();
            return 0;
        }
        if ((w->parts++ && ADD(&w->text, "\n") < 0) || buffer_add(&w->text, utf8, (size_t)size) < 0) {
            return -1;
        }
        return 1;
    }
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow) {
            return 0;
        }
        char digits[24];
        int length = format_int(digits, n);
        if ((w->parts++ && ADD(&w->text, "\n") < 0) ||
            buffer_add(&w->text, digits, (size_t)length) < 0) {
            return -1;
        }
        return 1;
    }
    return 0;
}

static int
add_field(Walk *w, const char *path, Py_ssize_t size, PyObject *value)
{
    if (w->count == MAX_FIELDS) {
        return 0;
    }
    w->fields[w->count++] = (Field){path, size, value, NULL, 0, 0, path_head(path, size)};
    return 1;
}

static inline __attribute__((always_inline)) int
is_key(const char *s, Py_ssize_t n, const char *literal)
{
    /* inlined, a literal's strlen and memcmp are a few compares */
    return (size_t)n == strlen(literal) && memcmp(s, literal, (size_t)n) == 0;
}

/* commitments.field_paths and fulltext.search_document's values, in one walk: 1, 0 to decline,
 * -1 on an error. */
static int
walk_content(Walk *w, PyObject *content)
{
    PyObject *key, *value;
    Py_ssize_t at = 0;
    while (PyDict_Next(content, &at, &key, &value)) {
        if (!is_plain_ascii(key)) {
            return 0;
        }
        const char *name = (const char *)PyUnicode_1BYTE_DATA(key);
        Py_ssize_t size = PyUnicode_GET_LENGTH(key);
        if (memchr(name, '.', (size_t)size) != NULL || is_key(name, size, "id") ||
            is_key(name, size, "tenant_id") || is_key(name, size, "seq") ||
            is_key(name, size, "received_at") || is_key(name, size, "hash")) {
            return 0; /* a server field, or a name field_paths refuses: the exact path */
        }
        if (value == Py_None) {
            continue;
        }
        int committed = is_key(name, size, "actor") || is_key(name, size, "target") ||
                        is_key(name, size, "source") || is_key(name, size, "metadata");
        if (committed && PyDict_CheckExact(value)) {
            PyObject *sub, *item;
            Py_ssize_t at2 = 0;
            while (PyDict_Next(value, &at2, &sub, &item)) {
                if (!is_plain_ascii(sub)) {
                    return 0;
                }
                if (item == Py_None) {
                    continue;
                }
                Py_ssize_t sub_size = PyUnicode_GET_LENGTH(sub);
                size_t need = (size_t)(size + 1 + sub_size);
                if (w->used + need > ARENA_SIZE) {
                    return 0;
                }
                char *path = w->arena + w->used;
                memcpy(path, name, (size_t)size);
                path[size] = '.';
                memcpy(path + size + 1, PyUnicode_1BYTE_DATA(sub), (size_t)sub_size);
                w->used += need;
                int done = add_field(w, path, (Py_ssize_t)need, item);
                if (done > 0) {
                    done = add_words(w, item);
                }
                if (done <= 0) {
                    return done;
                }
            }
            continue;
        }
        if (!add_field(w, name, size, value)) {
            return 0;
        }
        if (is_key(name, size, "message") || is_key(name, size, "timestamp") ||
            is_key(name, size, "signature")) {
            continue; /* not in the full text's fields */
        }
        int done = add_words(w, value);
        if (done <= 0) {
            return done;
        }
    }
    return 1;
}

static int
field_before(const Field *a, const Field *b)
{
    if (a->head != b->head) { /* paths are printable ASCII: no zero byte pads a tie */
        return a->head < b->head;
    }
    Py_ssize_t n = a->size < b->size ? a->size : b->size;
    int c = memcmp(a->path, b->path, (size_t)n);
    return c < 0 || (c == 0 && a->size < b->size);
}

/* Sort the fields by path (code point order: they are ASCII); 0 if two are equal. */
static int
sort_fields(Walk *w)
{
    for (int i = 1; i < w->count; i++) {
        Field f = w->fields[i];
        int j = i;
        while (j > 0 && field_before(&f, &w->fields[j - 1])) {
            w->fields[j] = w->fields[j - 1];
            j--;
        }
        w->fields[j] = f;
    }
    for (int i = 1; i < w->count; i++) {
        if (!field_before(&w->fields[i - 1], &w->fields[i])) {
            return 0;
        }
    }
    return 1;
}

/* The row's leaf from its content and packed salts equals its stored leaf: 1, 0, -1. */
static int
leaf_matches(Walk *w, const char *salts, Py_ssize_t salts_size, const char *id, Py_ssize_t id_size,
             const char *received_at, Py_ssize_t received_size, long long seq,
             PyObject *tenant_json, const char *stored)
{
    if (salts_size != (Py_ssize_t)w->count * SALT_SIZE) {
        return 0;
    }
    Buffer text, field;
    buffer_init(&text);
    buffer_init(&field);
    int result = -1;
    if (ADD(&text, "\x00{\"commitments\":{") < 0) {
        goto done;
    }
    for (int n = 0; n < w->count; n++) {
        const Field *f = &w->fields[n];
        if ((n && ADD(&text, ",") < 0) || ADD(&text, "\"") < 0 ||
            buffer_add(&text, f->path, (size_t)f->size) < 0 || ADD(&text, "\":\"") < 0) {
            goto done;
        }
        int added = 1;
        if (f->value != NULL) {
            added = add_commitment(&text, &field, NULL, salts + n * SALT_SIZE, f->value);
        } else {
            unsigned char digest[SHA256_DIGEST_LENGTH];
            field.size = 0;
            /* a string as the body holds it (not unescaped into w->decoded) is its own JCS
             * form: scan_string took no quote, backslash or control character in it */
            uintptr_t at = (uintptr_t)f->jcs, decoded = (uintptr_t)w->decoded;
            int raw = f->kind == 's' && (at < decoded || at >= decoded + sizeof w->decoded);
            int failed = buffer_add(&field, salts + n * SALT_SIZE, SALT_SIZE) < 0;
            if (!failed && raw) {
                failed = buffer_add(&field, "\"", 1) < 0 ||
                         buffer_add(&field, f->jcs, (size_t)f->jcs_size) < 0 ||
                         buffer_add(&field, "\"", 1) < 0;
            } else if (!failed) {
                failed = (f->kind == 's' ? add_jcs_utf8(&field, f->jcs, f->jcs_size)
                                         : buffer_add(&field, f->jcs, (size_t)f->jcs_size)) < 0;
            }
            if (failed) {
                goto done;
            }
            buffer_sha256(&field, digest);
            added = add_hex(&text, digest) < 0 ? -1 : 1;
        }
        if (added <= 0) {
            result = added;
            goto done;
        }
        if (ADD(&text, "\"") < 0) {
            goto done;
        }
    }
    char digits[24];
    int length = format_int(digits, seq);
    if (ADD(&text, "},\"id\":\"") < 0 || buffer_add(&text, id, (size_t)id_size) < 0 ||
        ADD(&text, "\",\"received_at\":\"") < 0 ||
        buffer_add(&text, received_at, (size_t)received_size) < 0 ||
        ADD(&text, "\",\"seq\":") < 0 || buffer_add(&text, digits, (size_t)length) < 0 ||
        ADD(&text, ",\"tenant_id\":") < 0 || add_text(&text, tenant_json) < 0 ||
        ADD(&text, ",\"v\":1}") < 0) {
        goto done;
    }
    unsigned char digest[SHA256_DIGEST_LENGTH];
    buffer_sha256(&text, digest);
    result = memcmp(digest, stored, SHA256_DIGEST_LENGTH) == 0;
done:
    buffer_free(&text);
    buffer_free(&field);
    return result;
}

/* content.get(key) (borrowed; NULL if absent, with no exception unless -1 is returned). */
static int
get(PyObject *dict, PyObject *key, PyObject **out)
{
    *out = PyDict_GetItemWithError(dict, key);
    return *out == NULL && PyErr_Occurred() ? -1 : 0;
}

/* storage.rows.filter_values(content), borrowed, NULL for None: 1, 0 to decline, -1. */
static int
query_columns(PyObject *content, PyObject *out[QUERY_COLUMN_COUNT])
{
    static PyObject **const top[] = {&k_timestamp, &k_action, &k_category, &k_outcome};
    static PyObject **const subs[][2] = {
        {&k_actor, &k_id},   {&k_actor, &k_email},  {&k_actor, &k_type},
        {&k_target, &k_id},  {&k_target, &k_type},  {&k_source, &k_ip},
        {&k_source, &k_client_id},
    };
    static PyObject **const tail[] = {&k_session_id, &k_request_id, &k_trace_id,
                                      &k_idempotency_key};
    for (int i = 0; i < 4; i++) {
        if (get(content, *top[i], &out[i]) < 0) {
            return -1;
        }
    }
    if (out[3] == NULL) {
        out[3] = s_unknown; /* c.get("outcome", "unknown") */
    }
    for (int i = 0; i < 4; i++) {
        if (out[i] == Py_None) {
            out[i] = NULL;
        }
        if (out[i] != NULL && !PyUnicode_CheckExact(out[i])) {
            if (i != 2) {
                return 0; /* timestamp, action, outcome are stored as they are: exact path */
            }
            out[i] = NULL; /* category: text only */
        }
    }
    for (int i = 0; i < 7; i++) {
        PyObject *object, *value = NULL;
        if (get(content, *subs[i][0], &object) < 0) {
            return -1;
        }
        if (object != NULL && PyDict_CheckExact(object) && get(object, *subs[i][1], &value) < 0) {
            return -1;
        }
        out[4 + i] = value != NULL && PyUnicode_CheckExact(value) ? value : NULL;
    }
    for (int i = 0; i < 4; i++) {
        PyObject *value;
        if (get(content, *tail[i], &value) < 0) {
            return -1;
        }
        out[11 + i] = value != NULL && PyUnicode_CheckExact(value) ? value : NULL;
    }
    return 1;
}

/* A column holds exactly `expected` (NULL: SQL NULL). */
static int
column_is(const Row *row, int i, PyObject *expected)
{
    if (expected == NULL) {
        return row_null(row, i);
    }
    const char *data;
    Py_ssize_t size;
    return row_text(row, i, &data, &size) && str_equals(expected, data, size);
}

typedef struct {
    long long seq;
    PyObject *counted; /* new reference: the query columns, as the content defines them; or */
    Slice *columns;    /* NULL, and these, as scanned (for a Tally: no object made) */
} Vouched;

/* -- scan_body: the common body read without making a Python object of it ------------------- *
 *
 * The writer stores orjson.dumps(content): compact, keys and strings in UTF-8, escapes only
 * where JSON needs them. Such a body's common case is read here directly: an object whose
 * values are strings with no escape, integers, true, false, null, and (for a committed object's
 * name) one level of object of those. For those values JCS writes exactly the bytes the body
 * holds, so the commitments hash the body's own slices. Anything else (an escape, a float, an
 * array, a nested object, whitespace, a repeated key, invalid UTF-8, a name this part declines)
 * is declined, and the row is read by `loads` instead.
 */

/* Strict UTF-8 (no overlong form, no surrogate, nothing past U+10FFFF). */
static int
valid_utf8(const unsigned char *s, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        int extra;
        unsigned int cp;
        if (c >= 0xc2 && c <= 0xdf) {
            extra = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            extra = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            extra = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + extra >= n) {
            return 0; /* cut short */
        }
        for (int k = 1; k <= extra; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if ((extra == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (extra == 3 && (cp < 0x10000 || cp > 0x10ffff))) {
            return 0;
        }
        i += extra + 1;
    }
    return 1;
}

static int
hex4(const char *s, unsigned int *out)
{
    unsigned int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (d < 0) {
            return 0;
        }
        v = v << 4 | (unsigned int)d;
    }
    *out = v;
    return 1;
}

/* Unescape a string's body bytes [s, e) (which hold a backslash) into w->decoded: 1 with the
 * UTF-8 in `out`, 0 for a malformed escape or a lone surrogate. */
static int
unescape(Walk *w, const unsigned char *s, const unsigned char *e, Slice *out)
{
    if (w->decoded_used + (size_t)(e - s) > ARENA_SIZE) {
        return 0; /* unescaped it is never longer */
    }
    unsigned char *start = (unsigned char *)w->decoded + w->decoded_used, *o = start;
    while (s < e) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        if (e - s < 2) {
            return 0;
        }
        char c = (char)s[1];
        s += 2;
        switch (c) {
        case '"': *o++ = '"'; continue;
        case '\\': *o++ = '\\'; continue;
        case '/': *o++ = '/'; continue;
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default: return 0;
        }
        unsigned int cp, low;
        if (e - s < 4 || !hex4((const char *)s, &cp)) {
            return 0;
        }
        s += 4;
        if (cp >= 0xdc00 && cp <= 0xdfff) {
            return 0; /* a lone low surrogate */
        }
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (e - s < 6 || s[0] != '\\' || s[1] != 'u' || !hex4((const char *)s + 2, &low) ||
                low < 0xdc00 || low > 0xdfff) {
                return 0; /* a lone high surrogate */
            }
            s += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
        }
        if (cp < 0x80) {
            *o++ = (unsigned char)cp;
        } else if (cp < 0x800) {
            *o++ = (unsigned char)(0xc0 | cp >> 6);
            *o++ = (unsigned char)(0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *o++ = (unsigned char)(0xe0 | cp >> 12);
            *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            *o++ = (unsigned char)(0x80 | (cp & 0x3f));
        } else {
            *o++ = (unsigned char)(0xf0 | cp >> 18);
            *o++ = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
            *o++ = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            *o++ = (unsigned char)(0x80 | (cp & 0x3f));
        }
    }
    *out = (Slice){(const char *)start, o - start, 's'};
    w->decoded_used += (size_t)(o - start);
    return 1;
}

/* A string at *p (past its opening quote): 1 with its UTF-8 (unescaped), *p past its closing
 * quote; 0 for a raw control character, invalid UTF-8 or a malformed escape. */
static int
scan_string(Walk *w, const char **p, const char *end, Slice *out)
{
    const unsigned char *s = (const unsigned char *)*p, *e = (const unsigned char *)end;
    int ascii = 1, escaped = 0;
    const unsigned char *q = s;
    for (; q < e; q++) {
#ifdef __SSE2__
        /* 16 bytes at a time, to the first special one: a quote, a backslash, a byte <= 0x1f
         * (unsigned: min(v, 0x1f) == v). A byte >= 0x80 anywhere in them clears `ascii`. */
        while (e - q >= 16) {
            const __m128i v = _mm_loadu_si128((const __m128i *)q);
            const __m128i special = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v));
            if (_mm_movemask_epi8(v)) {
                ascii = 0;
            }
            int found = _mm_movemask_epi8(special);
            if (found) {
                q += __builtin_ctz((unsigned)found);
                goto special;
            }
            q += 16;
        }
#endif
        /* 8 bytes at a time, to the first special one: a byte < 0x20, a quote, a backslash.
         * Each test flags that byte, and may flag bytes after it (a borrow), never one before:
         * the lowest flag is the first special byte. A byte >= 0x80 only clears `ascii` (which,
         * cleared early, costs a UTF-8 check and changes no answer). */
        while (e - q >= 8) {
            uint64_t v;
            memcpy(&v, q, 8);
            const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
            uint64_t quote = v ^ (0x22 * ones), backslash = v ^ (0x5c * ones);
            uint64_t special = (((v - 0x20 * ones) & ~v) | ((quote - ones) & ~quote) |
                                ((backslash - ones) & ~backslash)) &
                               highs;
            if (v & highs) {
                ascii = 0;
            }
            if (special) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                q += __builtin_ctzll(special) >> 3;
#endif
                break;
            }
            q += 8;
        }
        if (q == e) {
            break;
        }
#ifdef __SSE2__
    special:
#endif
        if (!string_special[*q]) {
            continue;
        }
        if (*q == '"') {
            break;
        }
        if (*q == '\\') {
            escaped = 1;
            if (++q == e) {
                return 0;
            }
            continue; /* the escaped byte (a quote, a backslash, a letter) */
        }
        if (*q < 0x20) {
            return 0;
        }
        ascii = 0;
    }
    if (q == e || (!ascii && !valid_utf8(s, q - s))) {
        return 0;
    }
    if (escaped) {
        if (w == NULL || !unescape(w, s, q, out)) {
            return 0;
        }
    } else {
        *out = (Slice){(const char *)s, q - s, 's'};
    }
    *p = (const char *)q + 1;
    return 1;
}

/* A value at *p: a string, a safe integer in JSON's one spelling, true, false or null. */
static int
scan_scalar(Walk *w, const char **p, const char *end, Slice *out)
{
    const char *s = *p;
    if (s >= end) {
        return 0;
    }
    if (*s == '"') {
        *p = s + 1;
        return scan_string(w, p, end, out);
    }
    if (*s == '-' || (*s >= '0' && *s <= '9')) {
        const char *q = s + (*s == '-');
        const char *digits = q;
        unsigned long long n = 0;
        while (q < end && *q >= '0' && *q <= '9' && q - digits < 17) {
            n = n * 10 + (unsigned long long)(*q - '0');
            q++;
        }
        Py_ssize_t count = q - digits;
        if (count == 0 || (count > 1 && *digits == '0') || n > (unsigned long long)MAX_SAFE_INTEGER ||
            (*s == '-' && n == 0) || (q < end && *q != ',' && *q != '}')) {
            return 0; /* "-0", a fraction, an exponent, a leading zero, past 2**53 - 1 */
        }
        *out = (Slice){s, q - s, 'n'};
        *p = q;
        return 1;
    }
    static const struct { const char *text; Py_ssize_t size; char kind; } words[] = {
        {"true", 4, 'b'}, {"false", 5, 'b'}, {"null", 4, 'z'},
    };
    for (size_t i = 0; i < 3; i++) {
        if (end - s >= words[i].size && memcmp(s, words[i].text, (size_t)words[i].size) == 0) {
            *out = (Slice){s, words[i].size, words[i].kind};
            *p = s + words[i].size;
            return 1;
        }
    }
    return 0;
}

/* Whether a key was seen already among `keys` (an object's keys so far). */
static int
repeated(const Slice *keys, int count, const Slice *key)
{
    for (int i = 0; i < count; i++) {
        if (keys[i].size == key->size && bytes_equal(keys[i].data, key->data, (size_t)key->size)) {
            return 1;
        }
    }
    return 0;
}

/* A key and its colon at *p (at its opening quote): printable ASCII, no quote or backslash. */
static int
scan_key(const char **p, const char *end, Slice *key)
{
    if (*p >= end || **p != '"') {
        return 0;
    }
    (*p)++;
    if (!scan_string(NULL, p, end, key) || !plain_ascii_bytes(key->data, key->size) || *p >= end ||
        **p != ':') {
        return 0;
    }
    (*p)++;
    return 1;
}

/* A scanned value's words for the full text: a string's bytes, an integer's digits. */
static int
add_slice_words(Walk *w, const Slice *value)
{
    if (value->kind != 's' && value->kind != 'n') {
        return 0;
    }
    return (w->parts++ && ADD(&w->text, "\n") < 0) ||
                   buffer_add(&w->text, value->data, (size_t)value->size) < 0
               ? -1
               : 1;
}

static int
add_slice_field(Walk *w, const char *path, Py_ssize_t size, const Slice *value)
{
    if (w->count == MAX_FIELDS) {
        return 0;
    }
    /* a number's or a literal's JCS form is as the body has it; a string's is written */
    w->fields[w->count++] =
        (Field){path, size, NULL, value->data, value->size, value->kind, path_head(path, size)};
    return 1;
}

#define KEY_IS(slice, literal) is_key((slice).data, (slice).size, (literal))

/* The column a committed object's member fills (filter_values), or -1. */
static int
member_column(const Slice *object, const Slice *member)
{
    if (KEY_IS(*object, "actor")) {
        return KEY_IS(*member, "id") ? 4 : KEY_IS(*member, "email") ? 5 : KEY_IS(*member, "type") ? 6 : -1;
    }
    if (KEY_IS(*object, "target")) {
        return KEY_IS(*member, "id") ? 7 : KEY_IS(*member, "type") ? 8 : -1;
    }
    if (KEY_IS(*object, "source")) {
        return KEY_IS(*member, "ip") ? 9 : KEY_IS(*member, "client_id") ? 10 : -1;
    }
    return -1;
}

/* The column a top-level field fills (filter_values), or -1. */
static int
top_column(const Slice *key)
{
    static const struct {
        const char *name;
        Py_ssize_t size;
        int column;
    } names[] = {
        {"timestamp", 9, 0},   {"action", 6, 1},      {"category", 8, 2},
        {"outcome", 7, 3},     {"session_id", 10, 11}, {"request_id", 10, 12},
        {"trace_id", 8, 13},   {"idempotency_key", 15, 14},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (key->size == names[i].size && memcmp(key->data, names[i].name, (size_t)key->size) == 0) {
            return names[i].column;
        }
    }
    return -1;
}

/* One committed object's members, at *p (past its "{"). */
static int
scan_members(Walk *w, const char **p, const char *end, const Slice *name)
{
    Slice keys[MAX_FIELDS];
    int count = 0;
    if (*p < end && **p == '}') {
        (*p)++;
        return 1;
    }
    for (;;) {
        Slice sub, value;
        if (count == MAX_FIELDS || !scan_key(p, end, &sub) || repeated(keys, count, &sub) ||
            !scan_scalar(w, p, end, &value)) {
            return 0;
        }
        keys[count++] = sub;
        if (value.kind != 'z') {
            size_t need = (size_t)(name->size + 1 + sub.size);
            if (w->used + need > ARENA_SIZE) {
                return 0;
            }
            char *path = w->arena + w->used;
            memcpy(path, name->data, (size_t)name->size);
            path[name->size] = '.';
            memcpy(path + name->size + 1, sub.data, (size_t)sub.size);
            w->used += need;
            if (!add_slice_field(w, path, (Py_ssize_t)need, &value)) {
                return 0;
            }
            int words = add_slice_words(w, &value);
            if (words < 0) {
                return -1;
            }
        }
        int column = member_column(name, &sub);
        if (column >= 0) {
            w->columns[column] = value;
        }
        if (*p >= end) {
            return 0;
        }
        if (**p == '}') {
            (*p)++;
            return 1;
        }
        if (**p != ',') {
            return 0;
        }
        (*p)++;
    }
}

/* Read a body of the common case: its fields (path, JCS bytes), its full-text words, the
 * values of its query columns and message. 1, 0 to decline, -1 on a memory error. */
static int
scan_body(Walk *w, const char *body, Py_ssize_t size)
{
    const char *p = body, *end = body + size;
    Slice keys[MAX_FIELDS];
    int count = 0;
    w->count = 0;
    w->used = 0;
    w->text.size = 0;
    w->parts = 0;
    memset(w->columns, 0, sizeof w->columns);
    memset(&w->message, 0, sizeof w->message);
    w->decoded_used = 0;
    if (size < 2 || *p++ != '{') {
        return 0;
    }
    if (*p == '}') {
        return p + 1 == end;
    }
    for (;;) {
        Slice key, value;
        if (count == MAX_FIELDS || !scan_key(&p, end, &key) || repeated(keys, count, &key) ||
            memchr(key.data, '.', (size_t)key.size) != NULL || KEY_IS(key, "id") ||
            KEY_IS(key, "tenant_id") || KEY_IS(key, "seq") || KEY_IS(key, "received_at") ||
            KEY_IS(key, "hash") || p >= end) {
            return 0;
        }
        keys[count++] = key;
        int committed = KEY_IS(key, "actor") || KEY_IS(key, "target") ||
                        KEY_IS(key, "source") || KEY_IS(key, "metadata");
        if (*p == '{') {
            if (!committed) {
                return 0;
            }
            p++;
            int done = scan_members(w, &p, end, &key);
            if (done <= 0) {
                return done;
            }
        } else {
            if (!scan_scalar(w, &p, end, &value)) {
                return 0;
            }
            if (value.kind != 'z') {
                if (!add_slice_field(w, key.data, key.size, &value)) {
                    return 0;
                }
                if (!KEY_IS(key, "message") && !KEY_IS(key, "timestamp") &&
                    !KEY_IS(key, "signature") && add_slice_words(w, &value) < 0) {
                    return -1;
                }
            }
            int column = top_column(&key);
            if (column >= 0) {
                w->columns[column] = value;
            } else if (KEY_IS(key, "message")) {
                w->message = value;
            }
        }
        if (p >= end) {
            return 0;
        }
        if (*p == '}') {
            return p + 1 == end;
        }
        if (*p != ',') {
            return 0;
        }
        p++;
    }
}

/* A column's expected value from a scanned body (filter_values): 1 with `out` (kind 's' or
 * 'z' for NULL), 0 if only the exact path can say (a non-text timestamp, action, outcome). */
static int
scanned_column(const Walk *w, int i, Slice *out)
{
    static const Slice unknown = {"unknown", 7, 's'};
    Slice v = w->columns[i];
    if (i == 3 && v.kind == 0) {
        v = unknown; /* c.get("outcome", "unknown") */
    }
    if (v.kind == 's' || v.kind == 0 || v.kind == 'z') {
        *out = v.kind == 's' ? v : (Slice){NULL, 0, 'z'};
        return 1;
    }
    if (i == 0 || i == 1 || i == 3) {
        return 0;
    }
    *out = (Slice){NULL, 0, 'z'}; /* a text-only column: NULL for anything but a string */
    return 1;
}

/* The str of a column value, the previous row's object again when it is the same text. */
static PyObject *
column_object(Walk *w, int i, const Slice *value)
{
    if (value->kind != 's') {
        return Py_NewRef(Py_None);
    }
    PyObject *last = w->last[i];
    if (last != NULL) {
        Py_ssize_t n;
        const char *utf8 = PyUnicode_AsUTF8AndSize(last, &n);
        if (utf8 != NULL && n == value->size && memcmp(utf8, value->data, (size_t)n) == 0) {
            return Py_NewRef(last);
        }
    }
    PyObject *made = PyUnicode_DecodeUTF8(value->data, value->size, NULL);
    if (made != NULL) {
        Py_XSETREF(w->last[i], Py_NewRef(made));
    }
    return made;
}

/* Whether a text column holds exactly the slice (kind 'z': NULL). */
static int
column_holds(const Row *row, int i, const Slice *value)
{
    if (value->kind != 's') {
        return row_null(row, i);
    }
    const char *data;
    Py_ssize_t size;
    return row_text(row, i, &data, &size) && size == value->size &&
           bytes_equal(data, value->data, (size_t)size);
}

/* The rest of check_row for a scanned body: 1 vouched, 0 declined, -1. */
static int
check_scanned(const Row *row, Walk *w, PyObject *tenant_json, const char *message,
              Py_ssize_t message_size, const char *fields, Py_ssize_t fields_size, Vouched *out,
              const char *salts, Py_ssize_t salts_size, const char *id, Py_ssize_t id_size,
              const char *received_at, Py_ssize_t received_size, long long seq, const char *leaf)
{
    Slice *expected = w->expected;
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        if (!scanned_column(w, i, &expected[i]) || !column_holds(row, F_COLUMNS + i, &expected[i])) {
            return 0;
        }
    }
    if (expected[1].kind == 's' && is_key(expected[1].data, expected[1].size, "event.redact")) {
        return 0; /* an erasure record: the redaction ledger's path */
    }
    const Slice *m = &w->message;
    if ((m->kind == 's' ? m->size != message_size || memcmp(m->data, message, (size_t)m->size)
                        : message_size != 0) ||
        (Py_ssize_t)w->text.size != fields_size ||
        memcmp(w->text.data, fields, (size_t)fields_size) != 0) {
        return 0;
    }
    int matches = sort_fields(w) ? leaf_matches(w, salts, salts_size, id, id_size, received_at,
                                                received_size, seq, tenant_json, leaf)
                                 : 0;
    if (matches <= 0) {
        return matches;
    }
    out->seq = seq;
    out->columns = NULL;
    if (w->slices) {
        out->counted = NULL;
        out->columns = expected;
        return 1;
    }
    out->counted = PyTuple_New(QUERY_COLUMN_COUNT);
    if (out->counted == NULL) {
        return -1;
    }
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        PyObject *value = column_object(w, i, &expected[i]);
        if (value == NULL) {
            Py_CLEAR(out->counted);
            return -1;
        }
        PyTuple_SET_ITEM(out->counted, i, value);
    }
    out->seq = seq;
    return 1;
}


/* Check one row: 1 vouched (out filled), 0 declined, -1 with an exception set. */
static int
check_row(const Row *row, PyObject *tenant_json, PyObject *loads, Walk *w, Vouched *out)
{
    const char *id, *received_at, *body, *salts, *leaf, *message, *fields;
    Py_ssize_t id_size, received_size, body_size, salts_size, leaf_size, message_size, fields_size;
    long long seq;
    if (!row_int(row, F_SEQ, &seq) || seq < 0 || seq > MAX_SAFE_INTEGER ||
        !row_text(row, F_ID, &id, &id_size) || !plain_ascii_bytes(id, id_size) ||
        !row_text(row, F_RECEIVED_AT, &received_at, &received_size) ||
        !received_at_bytes(received_at, received_size) ||
        !row_blob(row, F_BODY, &body, &body_size) ||
        !row_blob(row, F_SALTS, &salts, &salts_size) ||
        !row_blob(row, F_LEAF, &leaf, &leaf_size) || leaf_size != SHA256_DIGEST_LENGTH ||
        !row_null(row, F_REDACTIONS) || !row_text(row, F_MESSAGE, &message, &message_size) ||
        !row_text(row, F_FIELDS, &fields, &fields_size)) {
        return 0;
    }
    int scanned = scan_body(w, body, body_size);
    if (scanned < 0) {
        return -1;
    }
    if (scanned) {
        return check_scanned(row, w, tenant_json, message, message_size, fields, fields_size,
                             out, salts, salts_size, id, id_size, received_at, received_size,
                             seq, leaf);
    }
    PyObject *content;
    if (row->stmt) {
        PyObject *raw = PyBytes_FromStringAndSize(body, body_size);
        if (raw == NULL) {
            return -1;
        }
        content = PyObject_CallOneArg(loads, raw);
        Py_DECREF(raw);
    } else {
        content = PyObject_CallOneArg(loads, PyTuple_GET_ITEM(row->tuple, F_BODY));
    }
    if (content == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
            return -1;
        }
        PyErr_Clear(); /* not JSON: the exact path says so */
        return 0;
    }
    int result = 0;
    PyObject *columns[QUERY_COLUMN_COUNT];
    w->count = 0;
    w->used = 0;
    w->text.size = 0;
    w->parts = 0;
    if (!PyDict_CheckExact(content)) {
        goto done;
    }
    if ((result = walk_content(w, content)) <= 0 || !(result = sort_fields(w)) ||
        (result = leaf_matches(w, salts, salts_size, id, id_size, received_at, received_size, seq,
                               tenant_json, leaf)) <= 0 ||
        (result = query_columns(content, columns)) <= 0) {
        goto done;
    }
    result = 0;
    if (columns[1] != NULL && PyUnicode_Compare(columns[1], s_event_redact) == 0) {
        goto done; /* an erasure record: the redaction ledger's path */
    }
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        if (!column_is(row, F_COLUMNS + i, columns[i])) {
            goto done;
        }
    }
    PyObject *text;
    if (get(content, k_message, &text) < 0) {
        result = -1;
        goto done;
    }
    if (text != NULL && PyUnicode_CheckExact(text) ? !str_equals(text, message, message_size)
                                                   : message_size != 0) {
        goto done;
    }
    if ((Py_ssize_t)w->text.size != fields_size ||
        memcmp(w->text.data, fields, (size_t)fields_size) != 0) {
        goto done;
    }
    out->counted = PyTuple_New(QUERY_COLUMN_COUNT);
    if (out->counted == NULL) {
        result = -1;
        goto done;
    }
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        PyTuple_SET_ITEM(out->counted, i, Py_NewRef(columns[i] == NULL ? Py_None : columns[i]));
    }
    out->seq = seq;
    out->columns = NULL;
    result = 1;
done:
    Py_DECREF(content);
    return result;
}

/* -- Tally: the rollup recount (service.audit._rollups.RollupTally) kept in C ----------------
 *
 * RollupTally counts, per hour, each combination of a group's columns (one group of the few-
 * valued dimensions, one per many-valued one); a day is the sum of its hours. Here each row adds
 * one to one key per group, a key being the group, the hour (ts[:13]) and the group's values,
 * as bytes in a hash table; expected() spreads each key over its dimensions, hour and day, as
 * RollupTally.expected does, and matches() compares that with the stored rollups in one go.
 * Rows with a value that is neither a str nor None come back from add() for the Python tally.
 */

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

static PyTypeObject TallyType;
static PyObject *sqlite_failed(sqlite3 *db, const char *doing);

/* A key's hash: 8 bytes at a time, multiplied and folded (the keys are short and similar). */
static uint64_t
key_hash(const unsigned char *s, size_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t v = 0;
    memcpy(&v, s, n);
    h = (h ^ v) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static void
table_free(TallyTable *t)
{
    PyMem_Free(t->slots);
    PyMem_Free(t->arena);
    memset(t, 0, sizeof *t);
}

static int
table_grow(TallyTable *t)
{
    size_t capacity = t->capacity ? 2 * t->capacity : 4096;
    TallySlot *slots = PyMem_Calloc(capacity, sizeof *slots);
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (size_t i = 0; i < t->capacity; i++) {
        TallySlot *s = &t->slots[i];
        if (s->count == 0) {
            continue;
        }
        size_t j = s->hash & (capacity - 1);
        while (slots[j].count != 0) {
            j = (j + 1) & (capacity - 1);
        }
        slots[j] = *s;
    }
    PyMem_Free(t->slots);
    t->slots = slots;
    t->capacity = capacity;
    return 0;
}

/* Add n to the count of a key whose key_hash() is `hash`: 0, or -1 with MemoryError. */
static int
table_add_hashed(TallyTable *t, const unsigned char *key, size_t size, long long n, uint64_t hash)
{
    if (2 * (t->used + 1) > t->capacity && table_grow(t) < 0) {
        return -1;
    }
    size_t j = hash & (t->capacity - 1);
    for (;;) {
        TallySlot *s = &t->slots[j];
        if (s->count == 0) {
            break;
        }
        if (s->hash == hash && s->size == size && bytes_equal(t->arena + s->offset, key, size)) {
            s->count += n;
            return 0;
        }
        j = (j + 1) & (t->capacity - 1);
    }
    if (t->arena_used + size > t->arena_capacity) {
        size_t capacity = 2 * (t->arena_capacity + size) + 65536;
        char *arena = PyMem_Realloc(t->arena, capacity);
        if (arena == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        t->arena = arena;
        t->arena_capacity = capacity;
    }
    memcpy(t->arena + t->arena_used, key, size);
    t->slots[j] = (TallySlot){hash, t->arena_used, (uint32_t)size, n};
    t->arena_used += size;
    t->used++;
    return 0;
}

/* Add n to the key's count: 0, or -1 with MemoryError. */
static int
table_add(TallyTable *t, const unsigned char *key, size_t size, long long n)
{
    return table_add_hashed(t, key, size, n, key_hash(key, size));
}

/* The keys `recent` holds at most before tally_count moves them into the whole table: a table
 * small enough to stay in the CPU's cache (a key's slot and bytes in the whole table, of some
 * 10^6 keys, are two cache misses each; the rows of an hour share most of their keys). */
#define TALLY_RECENT 4096

/* Move `from`'s counts into `to` and empty `from`: 0, or -1 with MemoryError. The slots of
 * `to` are fetched ahead of their use, a few keys at a time, so that their misses overlap. */
static int
table_move(TallyTable *to, TallyTable *from)
{
    while (2 * (to->used + from->used + 1) > to->capacity) {
        if (table_grow(to) < 0) {
            return -1;
        }
    }
    enum { AHEAD = 8 };
    size_t ahead[AHEAD];
    int queued = 0;
    for (size_t i = 0, k = 0;; i++) {
        /* queue the next slot of `from` in use and prefetch its place in `to` */
        for (; k < from->capacity && queued < AHEAD; k++) {
            const TallySlot *s = &from->slots[k];
            if (s->count != 0) {
                __builtin_prefetch(&to->slots[s->hash & (to->capacity - 1)]);
                ahead[(i + queued) % AHEAD] = k;
                queued++;
            }
        }
        if (queued == 0) {
            break;
        }
        const TallySlot *s = &from->slots[ahead[i % AHEAD]];
        queued--;
        if (table_add_hashed(to, (const unsigned char *)from->arena + s->offset, s->size,
                             s->count, s->hash) < 0) {
            return -1;
        }
    }
    memset(from->slots, 0, from->capacity * sizeof *from->slots);
    from->used = 0;
    from->arena_used = 0;
    return 0;
}

/* The count of a key whose key_hash() is `hash`, 0 if absent. */
static long long
table_get_hashed(const TallyTable *t, const unsigned char *key, size_t size, uint64_t hash)
{
    if (t->capacity == 0) {
        return 0;
    }
    for (size_t j = hash & (t->capacity - 1);; j = (j + 1) & (t->capacity - 1)) {
        const TallySlot *s = &t->slots[j];
        if (s->count == 0) {
            return 0;
        }
        if (s->hash == hash && s->size == size && bytes_equal(t->arena + s->offset, key, size)) {
            return s->count;
        }
    }
}

/* The count of a key, 0 if absent. */
static long long
table_get(const TallyTable *t, const unsigned char *key, size_t size)
{
    return table_get_hashed(t, key, size, key_hash(key, size));
}

/* A row key: group, hour, then each value as a byte 0 (None) or 1 and a 4-byte length and its
 * bytes. Keys longer than this are made on the heap. */
#define TALLY_KEY 512

typedef struct {
    unsigned char *data;
    size_t size, capacity;
    unsigned char local[TALLY_KEY];
} Key;

static int
key_add(Key *k, const void *bytes, size_t size)
{
    if (k->size + size > k->capacity) {
        size_t capacity = 2 * (k->size + size);
        unsigned char *data = PyMem_Malloc(capacity);
        if (data == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        memcpy(data, k->data, k->size);
        if (k->data != k->local) {
            PyMem_Free(k->data);
        }
        k->data = data;
        k->capacity = capacity;
    }
    memcpy(k->data + k->size, bytes, size);
    k->size += size;
    return 0;
}

static int
key_text(Key *k, const char *data, Py_ssize_t size)
{
    unsigned char head[5] = {1};
    uint32_t n = (uint32_t)size;
    memcpy(head + 1, &n, 4);
    return key_add(k, head, 5) < 0 || key_add(k, data, (size_t)size) < 0 ? -1 : 0;
}

/* The bytes of the first `chars` code points of UTF-8 text (ts[:13], hour[:10]). */
static Py_ssize_t
utf8_prefix(const char *s, Py_ssize_t size, int chars)
{
    Py_ssize_t i = 0;
    for (int c = 0; i < size; i++) {
        if (((unsigned char)s[i] & 0xc0) != 0x80 && c++ == chars) {
            break;
        }
    }
    return i;
}

/* A row's values, as UTF-8 (data NULL for None). */
typedef struct {
    const char *data;
    Py_ssize_t size;
} Text;

/* Count one row whose columns are given by `value(i)`; 0, or -1 with an exception. */
static int
tally_count(Tally *t, const Text *ts, const Text *values /* by column index */)
{
    Key k = {.data = NULL, .size = 0, .capacity = TALLY_KEY};
    k.data = k.local;
    Py_ssize_t hour = ts->data == NULL ? 0 : utf8_prefix(ts->data, ts->size, 13);
    int failed = 0;
    for (int g = 0; !failed && g < t->groups; g++) {
        k.size = 0;
        unsigned char head = (unsigned char)g;
        failed = key_add(&k, &head, 1) < 0 || key_text(&k, ts->data ? ts->data : "", hour) < 0;
        for (int c = 0; !failed && c < t->group_size[g]; c++) {
            const Text *v = &values[t->columns[g][c]];
            if (v->data == NULL) {
                unsigned char none = 0;
                failed = key_add(&k, &none, 1) < 0;
            } else {
                failed = key_text(&k, v->data, v->size) < 0;
            }
        }
        failed = failed || table_add(&t->recent, k.data, k.size, 1) < 0;
    }
    if (!failed && t->recent.used >= TALLY_RECENT) {
        failed = table_move(&t->table, &t->recent) < 0;
    }
    if (k.data != k.local) {
        PyMem_Free(k.data);
    }
    return failed ? -1 : 0;
}

/* Count a row given as Python objects: 1, 0 if it has a value this tally does not take (for
 * the Python tally), -1 with an exception. */
static int
tally_objects(Tally *t, PyObject *row)
{
    Text values[QUERY_COLUMN_COUNT];
    Py_ssize_t n = PySequence_Fast_GET_SIZE(row);
    if (n != QUERY_COLUMN_COUNT) {
        return 0;
    }
    PyObject **items = PySequence_Fast_ITEMS(row);
    Text ts = {NULL, 0};
    for (Py_ssize_t i = 0; i < n; i++) {
        values[i] = (Text){NULL, 0};
        if (!t->used[i] || items[i] == Py_None) {
            continue;
        }
        if (!PyUnicode_CheckExact(items[i])) {
            if (i == t->ts_column) {
                continue; /* RollupTally: a timestamp that is not a str is hour "" */
            }
            return 0;
        }
        values[i].data = PyUnicode_AsUTF8AndSize(items[i], &values[i].size);
        if (values[i].data == NULL) {
            PyErr_Clear();
            return 0; /* a lone surrogate */
        }
    }
    if (values[t->ts_column].data != NULL) {
        ts = values[t->ts_column];
    }
    return tally_count(t, &ts, values) < 0 ? -1 : 1;
}

/* Count a vouched row's columns as scanned (kind 's', or NULL). */
static int
tally_slices(Tally *t, const Slice *columns)
{
    Text values[QUERY_COLUMN_COUNT];
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        values[i] = columns[i].kind == 's' ? (Text){columns[i].data, columns[i].size}
                                           : (Text){NULL, 0};
    }
    return tally_count(t, &values[t->ts_column], values);
}

static int
tally_init(Tally *self, PyObject *args, PyObject *kwargs)
{
    Py_ssize_t ts_column;
    PyObject *total, *groups;
    static char *names[] = {"ts_column", "total", "groups", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "nUO!:Tally", names, &ts_column, &total,
                                     &PyTuple_Type, &groups)) {
        return -1;
    }
    int ok = ts_column >= 0 && ts_column < QUERY_COLUMN_COUNT && PyTuple_GET_SIZE(groups) > 0 &&
             PyTuple_GET_SIZE(groups) <= TALLY_GROUPS;
    for (Py_ssize_t g = 0; ok && g < PyTuple_GET_SIZE(groups); g++) {
        PyObject *group = PyTuple_GET_ITEM(groups, g);
        ok = PyTuple_Check(group) && PyTuple_GET_SIZE(group) > 0 &&
             PyTuple_GET_SIZE(group) <= TALLY_COLUMNS;
        for (Py_ssize_t c = 0; ok && c < PyTuple_GET_SIZE(group); c++) {
            PyObject *pair = PyTuple_GET_ITEM(group, c);
            ok = PyTuple_Check(pair) && PyTuple_GET_SIZE(pair) == 2 &&
                 PyUnicode_CheckExact(PyTuple_GET_ITEM(pair, 0)) &&
                 PyLong_Check(PyTuple_GET_ITEM(pair, 1));
            if (ok) {
                Py_ssize_t column = PyLong_AsSsize_t(PyTuple_GET_ITEM(pair, 1));
                ok = column >= 0 && column < QUERY_COLUMN_COUNT;
                self->columns[g][c] = column;
            }
        }
    }
    if (!ok) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError,
                        "Tally(ts_column, total, groups): groups a tuple of up to 8 tuples of up"
                        " to 8 (dimension, column) pairs, columns < 15");
        return -1;
    }
    table_free(&self->table);
    table_free(&self->recent);
    Py_XSETREF(self->total, Py_NewRef(total));
    for (int g = 0; g < self->groups; g++) {
        for (int c = 0; c < self->group_size[g]; c++) {
            Py_CLEAR(self->names[g][c]);
        }
    }
    self->ts_column = ts_column;
    self->groups = (int)PyTuple_GET_SIZE(groups);
    memset(self->used, 0, sizeof self->used);
    self->used[ts_column] = 1;
    for (int g = 0; g < self->groups; g++) {
        PyObject *group = PyTuple_GET_ITEM(groups, g);
        self->group_size[g] = (int)PyTuple_GET_SIZE(group);
        for (int c = 0; c < self->group_size[g]; c++) {
            self->names[g][c] = Py_NewRef(PyTuple_GET_ITEM(PyTuple_GET_ITEM(group, c), 0));
            self->used[self->columns[g][c]] = 1;
        }
    }
    return 0;
}

static void
tally_dealloc(Tally *self)
{
    table_free(&self->table);
    table_free(&self->recent);
    Py_XDECREF(self->total);
    for (int g = 0; g < self->groups; g++) {
        for (int c = 0; c < self->group_size[g]; c++) {
            Py_XDECREF(self->names[g][c]);
        }
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

PyDoc_STRVAR(tally_add_doc,
"add(rows, /)\n--\n\n"
"Count rows (sequences of the QUERY_COLUMNS values); return those with a value that is neither\n"
"a str nor None (a timestamp that is no str counts as hour \"\"), not counted, for the caller.");

static PyObject *
tally_add(Tally *self, PyObject *rows)
{
    PyObject *fast = PySequence_Fast(rows, "add() takes a sequence of rows");
    if (fast == NULL) {
        return NULL;
    }
    PyObject *declined = PyList_New(0);
    for (Py_ssize_t i = 0; declined != NULL && i < PySequence_Fast_GET_SIZE(fast); i++) {
        PyObject *row = PySequence_Fast_GET_ITEM(fast, i);
        PyObject *items = PySequence_Fast(row, "add() takes rows of columns");
        int counted = items == NULL ? -1 : tally_objects(self, items);
        Py_XDECREF(items);
        if (counted < 0 || (counted == 0 && PyList_Append(declined, row) < 0)) {
            Py_CLEAR(declined);
        }
    }
    Py_DECREF(fast);
    return declined;
}

/* The rollups the counts make, (dimension, period, value) -> n, as RollupTally.expected: into
 * `out` (a table keyed by the dimension's index, period and value). */
static int
tally_spread(Tally *self, TallyTable *out)
{
    if (self->recent.used > 0 && table_move(&self->table, &self->recent) < 0) {
        return -1;
    }
    Key k = {.data = NULL, .size = 0, .capacity = TALLY_KEY};
    k.data = k.local;
    int failed = 0;
    /* the rollups are added to a small table first (an hour's and a day's keys repeat), moved
     * into `out` a few thousand at a time with their slots prefetched (table_move); each key's
     * bytes are fetched a few slots ahead */
    TallyTable stage = {0};
    const size_t capacity = self->table.capacity;
    for (size_t i = 0; !failed && i < capacity; i++) {
        if (i + 8 < capacity && self->table.slots[i + 8].count != 0) {
            __builtin_prefetch(self->table.arena + self->table.slots[i + 8].offset);
        }
        const TallySlot *s = &self->table.slots[i];
        if (s->count == 0) {
            continue;
        }
        if (stage.used >= TALLY_RECENT && table_move(out, &stage) < 0) {
            failed = 1;
            break;
        }
        const unsigned char *p = (const unsigned char *)self->table.arena + s->offset;
        int g = p[0];
        uint32_t hour_size;
        memcpy(&hour_size, p + 2, 4);
        const char *hour = (const char *)p + 6;
        p += 6 + hour_size;
        Py_ssize_t day_size = utf8_prefix(hour, hour_size, 10);
        if (g == 0) { /* the first group's keys make the hour totals */
            k.size = 0;
            unsigned char dim = 0;
            failed = key_add(&k, &dim, 1) < 0 || key_text(&k, hour, hour_size) < 0 ||
                     key_text(&k, "", 0) < 0 || table_add(&stage, k.data, k.size, s->count) < 0;
        }
        for (int c = 0; !failed && c < self->group_size[g]; c++) {
            if (*p == 0) {
                p++;
                continue; /* None: no rollup row */
            }
            uint32_t size;
            memcpy(&size, p + 1, 4);
            const char *value = (const char *)p + 5;
            p += 5 + size;
            unsigned char dim = (unsigned char)(1 + g * TALLY_COLUMNS + c);
            for (int period = 0; !failed && period < 2; period++) {
                k.size = 0;
                failed = key_add(&k, &dim, 1) < 0 ||
                         key_text(&k, hour, period ? day_size : (Py_ssize_t)hour_size) < 0 ||
                         key_text(&k, value, size) < 0 ||
                         table_add(&stage, k.data, k.size, s->count) < 0;
            }
        }
    }
    if (!failed && stage.used > 0) {
        failed = table_move(out, &stage) < 0;
    }
    table_free(&stage);
    if (k.data != k.local) {
        PyMem_Free(k.data);
    }
    return failed ? -1 : 0;
}

static PyObject *
tally_dimension(Tally *self, int dim)
{
    return dim == 0 ? self->total
                    : self->names[(dim - 1) / TALLY_COLUMNS][(dim - 1) % TALLY_COLUMNS];
}

PyDoc_STRVAR(tally_expected_doc,
"expected()\n--\n\n"
"{(dimension, period, value): n} as RollupTally.expected gives it, of the rows counted.");

static PyObject *
tally_expected(Tally *self, PyObject *unused)
{
    (void)unused;
    TallyTable out = {0};
    if (tally_spread(self, &out) < 0) {
        table_free(&out);
        return NULL;
    }
    PyObject *result = PyDict_New();
    for (size_t i = 0; result != NULL && i < out.capacity; i++) {
        const TallySlot *s = &out.slots[i];
        if (s->count == 0) {
            continue;
        }
        const char *p = out.arena + s->offset;
        uint32_t period_size, value_size;
        memcpy(&period_size, p + 2, 4);
        memcpy(&value_size, p + 6 + period_size + 1, 4);
        PyObject *key = Py_BuildValue("(Os#s#)", tally_dimension(self, (unsigned char)p[0]),
                                      p + 6, (Py_ssize_t)period_size, p + 6 + period_size + 5,
                                      (Py_ssize_t)value_size);
        PyObject *n = PyLong_FromLongLong(s->count);
        if (key == NULL || n == NULL || PyDict_SetItem(result, key, n) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(key);
        Py_XDECREF(n);
    }
    table_free(&out);
    return result;
}

PyDoc_STRVAR(tally_matches_doc,
"matches(stored, /)\n--\n\n"
"Whether the stored rollups {(dimension, period, value): n} (rows with n != 0) are exactly\n"
"expected(), compared without making it.");

static PyObject *
tally_matches(Tally *self, PyObject *stored)
{
    if (!PyDict_Check(stored)) {
        PyErr_SetString(PyExc_TypeError, "matches() takes a dict");
        return NULL;
    }
    TallyTable out = {0};
    if (tally_spread(self, &out) < 0) {
        table_free(&out);
        return NULL;
    }
    int equal = (size_t)PyDict_GET_SIZE(stored) == out.used;
    Key k = {.data = NULL, .size = 0, .capacity = TALLY_KEY};
    k.data = k.local;
    PyObject *key, *value;
    Py_ssize_t at = 0;
    while (equal && PyDict_Next(stored, &at, &key, &value)) {
        equal = PyTuple_CheckExact(key) && PyTuple_GET_SIZE(key) == 3 && PyLong_CheckExact(value);
        int dim = -1;
        for (int d = 0; equal && dim < 0 && d <= TALLY_GROUPS * TALLY_COLUMNS; d++) {
            PyObject *name = d == 0 ? self->total
                                    : (d - 1) / TALLY_COLUMNS < self->groups &&
                                              (d - 1) % TALLY_COLUMNS <
                                                  self->group_size[(d - 1) / TALLY_COLUMNS]
                                          ? tally_dimension(self, d)
                                          : NULL;
            if (name != NULL && PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 0)) &&
                PyUnicode_Compare(name, PyTuple_GET_ITEM(key, 0)) == 0) {
                dim = d;
            }
        }
        const char *period = NULL, *text = NULL;
        Py_ssize_t period_size = 0, text_size = 0;
        equal = equal && dim >= 0 && PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 1)) &&
                PyUnicode_CheckExact(PyTuple_GET_ITEM(key, 2)) &&
                (period = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(key, 1), &period_size)) &&
                (text = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(key, 2), &text_size));
        if (!equal) {
            PyErr_Clear();
            break;
        }
        unsigned char d = (unsigned char)dim;
        k.size = 0;
        if (key_add(&k, &d, 1) < 0 || key_text(&k, period, period_size) < 0 ||
            key_text(&k, text, text_size) < 0) {
            equal = -1;
            break;
        }
        int overflow;
        long long n = PyLong_AsLongLongAndOverflow(value, &overflow);
        equal = !overflow && n != 0 && table_get(&out, k.data, k.size) == n;
    }
    if (k.data != k.local) {
        PyMem_Free(k.data);
    }
    table_free(&out);
    if (equal < 0) {
        return NULL;
    }
    return PyBool_FromLong(equal);
}

/* Whether the rows a statement gives, (dimension, period, value, n) with n != 0, are exactly
 * expected(): matches() without a Python object per stored row. The statement is stepped to its
 * end (and reset); 1, 0, or -1 with an exception (a SQLite error: SQLiteError). A row whose
 * columns are not text, text, text, integer is a difference. */
static int
tally_matches_statement(Tally *self, sqlite3_stmt *q, sqlite3 *db)
{
    /* the dimensions' names as UTF-8, by index (d = 0: the hour total) */
    const char *name[1 + TALLY_GROUPS * TALLY_COLUMNS];
    Py_ssize_t name_size[1 + TALLY_GROUPS * TALLY_COLUMNS];
    int dims = 0;
    for (int d = 0; d <= TALLY_GROUPS * TALLY_COLUMNS; d++) {
        name[d] = NULL;
        int g = (d - 1) / TALLY_COLUMNS, c = (d - 1) % TALLY_COLUMNS;
        if (d > 0 && (g >= self->groups || c >= self->group_size[g])) {
            continue;
        }
        name[d] = PyUnicode_AsUTF8AndSize(tally_dimension(self, d), &name_size[d]);
        if (name[d] == NULL) {
            return -1;
        }
        dims = d + 1;
    }
    TallyTable out = {0};
    if (tally_spread(self, &out) < 0) {
        table_free(&out);
        return -1;
    }
    Key k = {.data = NULL, .size = 0, .capacity = TALLY_KEY};
    k.data = k.local;
    enum { AHEAD = 8 };
    typedef struct {
        Key key;
        uint64_t hash;
        long long n;
    } Pending;
    Pending pending[AHEAD];
    for (int r = 0; r < AHEAD; r++) {
        pending[r].key.data = pending[r].key.local;
        pending[r].key.size = 0;
        pending[r].key.capacity = TALLY_KEY;
    }
    int equal = 1, rc = SQLITE_OK;
    size_t rows = 0;
    while (equal == 1 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) != SQLITE_TEXT || sqlite3_column_type(q, 1) != SQLITE_TEXT ||
            sqlite3_column_type(q, 2) != SQLITE_TEXT || sqlite3_column_type(q, 3) != SQLITE_INTEGER) {
            equal = 0;
            break;
        }
        const char *dim = (const char *)sqlite3_column_text(q, 0);
        Py_ssize_t dim_size = sqlite3_column_bytes(q, 0);
        int found = -1;
        for (int d = 0; d < dims && found < 0; d++) {
            if (name[d] != NULL && name_size[d] == dim_size &&
                memcmp(name[d], dim, (size_t)dim_size) == 0) {
                found = d;
            }
        }
        if (found < 0) {
            equal = 0;
            break;
        }
        const char *period = (const char *)sqlite3_column_text(q, 1);
        Py_ssize_t period_size = sqlite3_column_bytes(q, 1);
        const char *value = (const char *)sqlite3_column_text(q, 2);
        Py_ssize_t value_size = sqlite3_column_bytes(q, 2);
        unsigned char d = (unsigned char)found;
        k.size = 0;
        if (period == NULL || value == NULL || key_add(&k, &d, 1) < 0 ||
            key_text(&k, period, period_size) < 0 || key_text(&k, value, value_size) < 0) {
            equal = PyErr_Occurred() ? -1 : 0;
            break;
        }
        long long n = sqlite3_column_int64(q, 3);
        if (n == 0) {
            equal = 0;
            break;
        }
        /* looked up AHEAD rows later, its slot prefetched meanwhile (the stored rows come in
         * key order, the table's slots in hash order: each lookup is a cache miss) */
        Pending *next = &pending[rows % AHEAD];
        if (rows >= AHEAD) {
            equal = table_get_hashed(&out, next->key.data, next->key.size, next->hash) ==
                    next->n;
        }
        next->key.size = 0;
        if (key_add(&next->key, k.data, k.size) < 0) {
            equal = -1;
            break;
        }
        next->n = n;
        next->hash = key_hash(k.data, k.size);
        if (out.capacity) {
            __builtin_prefetch(&out.slots[next->hash & (out.capacity - 1)]);
        }
        rows++;
    }
    for (size_t r = rows > AHEAD ? rows - AHEAD : 0; equal == 1 && r < rows; r++) {
        const Pending *left = &pending[r % AHEAD];
        equal = table_get_hashed(&out, left->key.data, left->key.size, left->hash) == left->n;
    }
    for (int r = 0; r < AHEAD; r++) {
        if (pending[r].key.data != pending[r].key.local) {
            PyMem_Free(pending[r].key.data);
        }
    }
    if (equal == 1 && rc != SQLITE_DONE) {
        sqlite_failed(db, "SQLite read failed");
        equal = -1;
    }
    sqlite3_reset(q);
    if (k.data != k.local) {
        PyMem_Free(k.data);
    }
    /* each stored row found with its count, and as many rows as expected: the same mapping
     * (the primary key makes the stored keys distinct) */
    if (equal == 1 && rows != out.used) {
        equal = 0;
    }
    table_free(&out);
    return equal;
}

static PyMethodDef tally_methods[] = {
    {"add", (PyCFunction)tally_add, METH_O, tally_add_doc},
    {"expected", (PyCFunction)tally_expected, METH_NOARGS, tally_expected_doc},
    {"matches", (PyCFunction)tally_matches, METH_O, tally_matches_doc},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trailkeep.model._fastleaf.Tally",
    .tp_doc = PyDoc_STR("Tally(ts_column, total, groups): the rollup recount of\n"
                        "service.audit._rollups.RollupTally, in C. groups: tuples of\n"
                        "(dimension, column) counted together per hour; the first also makes\n"
                        "the hour totals (dimension `total`)."),
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)tally_init,
    .tp_dealloc = (destructor)tally_dealloc,
    .tp_methods = tally_methods,
};

static Walk *
walk_new(void)
{
    Walk *w = PyMem_Malloc(sizeof *w);
    if (w == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    buffer_init(&w->text);
    memset(w->last, 0, sizeof w->last);
    return w;
}

static void
walk_free(Walk *w)
{
    buffer_free(&w->text);
    for (int i = 0; i < QUERY_COLUMN_COUNT; i++) {
        Py_XDECREF(w->last[i]);
    }
    PyMem_Free(w);
}

/* What a chunk's check hands back; see check_rows' doc. */
typedef struct {
    PyObject *leaves, *counted, *rest, *watched;
    Py_ssize_t vouched;
    long long start, end;
    PyObject *watch; /* a set or frozenset of positions (may be empty) */
    PyObject *tally; /* None, or (ts column, ((counter, column or tuple of columns), ...)) */
    PyObject *last_hour;
} Chunk;

static int
chunk_init(Chunk *c, long long start, long long end, PyObject *watch)
{
    c->tally = Py_None;
    c->last_hour = NULL;
    c->leaves = c->counted = c->rest = c->watched = NULL;
    c->vouched = 0;
    c->start = start;
    c->end = end;
    c->watch = watch;
    if (end < start || end - start > 1 << 24) {
        PyErr_SetString(PyExc_ValueError, "a chunk is [start, end) with end - start <= 2**24");
        return -1;
    }
    c->leaves = PyList_New((Py_ssize_t)(end - start));
    if (c->leaves == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < (Py_ssize_t)(end - start); i++) {
        PyList_SET_ITEM(c->leaves, i, Py_NewRef(Py_None));
    }
    c->counted = PyList_New(0);
    c->rest = PyList_New(0);
    c->watched = PyList_New(0);
    return c->counted && c->rest && c->watched ? 0 : -1;
}

static void
chunk_clear(Chunk *c)
{
    Py_XDECREF(c->leaves);
    Py_XDECREF(c->counted);
    Py_XDECREF(c->rest);
    Py_XDECREF(c->watched);
    Py_CLEAR(c->last_hour);
}

static PyObject *
chunk_result(Chunk *c)
{
    PyObject *result = Py_BuildValue("(OOOOn)", c->leaves, c->counted, c->rest, c->watched,
                                     c->vouched);
    chunk_clear(c);
    return result;
}

/* ts[:13] of a row's timestamp column: the previous row's object again for the same hour. */
static PyObject *
hour_of(Chunk *c, PyObject *ts)
{
    if (!PyUnicode_Check(ts)) {
        return PyUnicode_FromString(""); /* as RollupTally.add: a non-text timestamp is "" */
    }
    if (c->last_hour != NULL && PyUnicode_IS_COMPACT_ASCII(ts) &&
        PyUnicode_GET_LENGTH(ts) >= 13 &&
        memcmp(PyUnicode_1BYTE_DATA(ts), PyUnicode_1BYTE_DATA(c->last_hour), 13) == 0) {
        return Py_NewRef(c->last_hour);
    }
    PyObject *hour = PyUnicode_Substring(ts, 0, 13);
    if (hour != NULL && PyUnicode_IS_COMPACT_ASCII(hour) && PyUnicode_GET_LENGTH(hour) == 13) {
        Py_XSETREF(c->last_hour, Py_NewRef(hour));
    }
    return hour;
}

static int
count_key(PyObject *counter, PyObject *key)
{
    PyObject *old = PyDict_GetItemWithError(counter, key);
    if (old == NULL && PyErr_Occurred()) {
        return -1;
    }
    PyObject *n = PyLong_FromLongLong(old == NULL ? 1 : PyLong_AsLongLong(old) + 1);
    int failed = n == NULL || PyDict_SetItem(counter, key, n) < 0;
    Py_XDECREF(n);
    return failed ? -1 : 0;
}

/* RollupTally.add for one row's query columns: each counter gets (hour, the column's value)
 * or (hour, (the columns' values...)). */
static int
tally_row(Chunk *c, PyObject *columns)
{
    Py_ssize_t ts_at = PyLong_AsSsize_t(PyTuple_GET_ITEM(c->tally, 0));
    PyObject *specs = PyTuple_GET_ITEM(c->tally, 1);
    if (ts_at < 0 || ts_at >= PyTuple_GET_SIZE(columns)) {
        PyErr_SetString(PyExc_ValueError, "tally: no such timestamp column");
        return -1;
    }
    PyObject *hour = hour_of(c, PyTuple_GET_ITEM(columns, ts_at));
    if (hour == NULL) {
        return -1;
    }
    int failed = 0;
    for (Py_ssize_t i = 0; !failed && i < PyTuple_GET_SIZE(specs); i++) {
        PyObject *spec = PyTuple_GET_ITEM(specs, i);
        PyObject *counter = PyTuple_GET_ITEM(spec, 0), *at = PyTuple_GET_ITEM(spec, 1);
        PyObject *value;
        if (PyLong_Check(at)) {
            Py_ssize_t k = PyLong_AsSsize_t(at);
            value = k >= 0 && k < PyTuple_GET_SIZE(columns) ? Py_NewRef(PyTuple_GET_ITEM(columns, k))
                                                            : NULL;
        } else {
            value = PyTuple_New(PyTuple_GET_SIZE(at));
            for (Py_ssize_t j = 0; value != NULL && j < PyTuple_GET_SIZE(at); j++) {
                Py_ssize_t k = PyLong_AsSsize_t(PyTuple_GET_ITEM(at, j));
                if (k < 0 || k >= PyTuple_GET_SIZE(columns)) {
                    Py_CLEAR(value);
                    break;
                }
                PyTuple_SET_ITEM(value, j, Py_NewRef(PyTuple_GET_ITEM(columns, k)));
            }
        }
        if (value == NULL) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "tally: no such column");
            }
            failed = 1;
            break;
        }
        PyObject *key = PyTuple_Pack(2, hour, value);
        failed = key == NULL || count_key(counter, key) < 0;
        Py_XDECREF(key);
        Py_DECREF(value);
    }
    Py_DECREF(hour);
    return failed ? -1 : 0;
}

/* Record a vouched row: its stored leaf, its columns, its received_at if watched. */
static int
chunk_vouch(Chunk *c, const Row *row, Vouched *v)
{
    const char *leaf, *received_at;
    Py_ssize_t size, received_size;
    int failed = 0;
    row_blob(row, F_LEAF, &leaf, &size);
    PyObject *hash = row->stmt ? PyBytes_FromStringAndSize(leaf, size)
                               : Py_NewRef(PyTuple_GET_ITEM(row->tuple, F_LEAF));
    failed = hash == NULL;
    if (!failed && PyObject_TypeCheck(c->tally, &TallyType)) {
        Tally *t = (Tally *)c->tally;
        int counted = v->counted == NULL ? (tally_slices(t, v->columns) < 0 ? -1 : 1)
                                         : tally_objects(t, v->counted);
        /* a row the Tally declines goes to the caller's Python tally, with the rest */
        failed = counted < 0 || (counted == 0 && PyList_Append(c->counted, v->counted) < 0);
    } else if (!failed) {
        failed = (c->tally == Py_None ? PyList_Append(c->counted, v->counted)
                                      : tally_row(c, v->counted)) < 0;
    }
    Py_XDECREF(v->counted);
    if (failed) {
        Py_XDECREF(hash);
        return -1;
    }
    PyList_SetItem(c->leaves, (Py_ssize_t)(v->seq - c->start), hash); /* steals hash */
    c->vouched++;
    if (PySet_GET_SIZE(c->watch) > 0) {
        PyObject *seq = PyLong_FromLongLong(v->seq);
        int watched = seq == NULL ? -1 : PySet_Contains(c->watch, seq);
        if (watched > 0) {
            row_text(row, F_RECEIVED_AT, &received_at, &received_size);
            PyObject *pair = Py_BuildValue("(Os#)", seq, received_at, received_size);
            failed = pair == NULL || PyList_Append(c->watched, pair) < 0;
            Py_XDECREF(pair);
        }
        failed = failed || watched < 0;
        Py_XDECREF(seq);
    }
    return failed ? -1 : 0;
}

/* Check a row into the chunk: vouched, or kept (`tuple`, a new reference, or NULL to build
 * one from the statement) for the exact path. */
static int
chunk_add(Chunk *c, const Row *row, Walk *w, PyObject *tenant_json, PyObject *loads,
          PyObject *(*as_tuple)(const Row *))
{
    Vouched v;
    w->slices = PyObject_TypeCheck(c->tally, &TallyType);
    int checked = check_row(row, tenant_json, loads, w, &v);
    if (checked < 0) {
        return -1;
    }
    if (checked && (v.seq < c->start || v.seq >= c->end ||
                    PyList_GET_ITEM(c->leaves, (Py_ssize_t)(v.seq - c->start)) != Py_None)) {
        Py_XDECREF(v.counted); /* outside the chunk, or a second row at a position */
        checked = 0;
    }
    if (checked) {
        return chunk_vouch(c, row, &v);
    }
    PyObject *tuple = as_tuple(row);
    if (tuple == NULL) {
        return -1;
    }
    int failed = PyList_Append(c->rest, tuple) < 0;
    Py_DECREF(tuple);
    return failed ? -1 : 0;
}

static PyObject *
tuple_as_is(const Row *row)
{
    return Py_NewRef(row->tuple);
}

static int
check_arguments(PyObject *tenant_json, PyObject *loads, PyObject *watch, PyObject *tally)
{
    if (!PyUnicode_Check(tenant_json) || !PyCallable_Check(loads) || !PyAnySet_Check(watch)) {
        PyErr_SetString(PyExc_TypeError,
                        "takes tenant_json (str), loads (callable) and watch (a set)");
        return -1;
    }
    if (tally == Py_None || PyObject_TypeCheck(tally, &TallyType)) {
        return 0;
    }
    int ok = PyTuple_CheckExact(tally) && PyTuple_GET_SIZE(tally) == 2 &&
             PyLong_Check(PyTuple_GET_ITEM(tally, 0)) && PyTuple_CheckExact(PyTuple_GET_ITEM(tally, 1));
    for (Py_ssize_t i = 0; ok && i < PyTuple_GET_SIZE(PyTuple_GET_ITEM(tally, 1)); i++) {
        PyObject *spec = PyTuple_GET_ITEM(PyTuple_GET_ITEM(tally, 1), i);
        ok = PyTuple_CheckExact(spec) && PyTuple_GET_SIZE(spec) == 2 &&
             PyDict_Check(PyTuple_GET_ITEM(spec, 0)) &&
             (PyLong_Check(PyTuple_GET_ITEM(spec, 1)) || PyTuple_CheckExact(PyTuple_GET_ITEM(spec, 1)));
        for (Py_ssize_t j = 0; ok && PyTuple_CheckExact(PyTuple_GET_ITEM(spec, 1)) &&
                               j < PyTuple_GET_SIZE(PyTuple_GET_ITEM(spec, 1)); j++) {
            ok = PyLong_Check(PyTuple_GET_ITEM(PyTuple_GET_ITEM(spec, 1), j));
        }
    }
    if (!ok) {
        PyErr_SetString(PyExc_TypeError,
                        "tally is None or (ts column, ((dict, column or tuple of columns), ...))");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(check_rows_doc,
"check_rows(rows, start, end, tenant_json, loads, watch, tally, /)\n--\n\n"
"Check rows of Store.audit_rows (AUDIT_FIELDS order) for positions [start, end) and vouch for\n"
"those whose leaf, query columns and full-text row all match their content (see the source).\n"
"Returns (leaves, counted, rest, watched, vouched): leaves[seq - start] is the stored leaf hash\n"
"of each vouched row (else None); counted the query columns of each vouched row; rest the rows\n"
"not vouched for, as given, for the exact path; watched (seq, received_at) of vouched rows\n"
"whose seq is in watch; vouched their number. body is parsed by loads (orjson.loads).\n"
"tally: None, or (ts column, ((counter, column or tuple of columns), ...)): then the query\n"
"columns of a vouched row are not listed but counted, as RollupTally.add counts them, each\n"
"counter getting (ts[:13], the column's value or the tuple of the columns' values).");

static PyObject *
check_rows(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "check_rows() takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *rows = args[0];
    long long start = PyLong_AsLongLong(args[1]), end = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (!PyList_Check(rows) || check_arguments(args[3], args[4], args[5], args[6]) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "check_rows() takes a list of rows");
        }
        return NULL;
    }
    Chunk c;
    if (chunk_init(&c, start, end, args[5]) < 0) {
        chunk_clear(&c);
        return NULL;
    }
    c.tally = args[6];
    Walk *w = walk_new();
    if (w == NULL) {
        chunk_clear(&c);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(rows); i++) {
        PyObject *tuple = PyList_GET_ITEM(rows, i);
        if (!PyTuple_CheckExact(tuple) || PyTuple_GET_SIZE(tuple) != F_COUNT) {
            PyErr_Format(PyExc_TypeError, "check_rows() takes tuples of %d fields", F_COUNT);
            goto failed;
        }
        Row row = {NULL, tuple, 0, NULL};
        if (chunk_add(&c, &row, w, args[3], args[4], tuple_as_is) < 0) {
            goto failed;
        }
    }
    walk_free(w);
    return chunk_result(&c);
failed:
    walk_free(w);
    chunk_clear(&c);
    return NULL;
}

/* -- SQLiteRows: the same check over a statement stepped here ------------------------------ */

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    sqlite3_stmt *stmt;
    sqlite3_stmt *leaves; /* or NULL: the leaves, stepped beside stmt (see rows_init) */
    sqlite3_stmt *hashes[2]; /* or NULL: hashes() queries */
    sqlite3_stmt *rollups;   /* or NULL: rollups_match()'s query */
} SQLiteRows;

static PyObject *
sqlite_failed(sqlite3 *db, const char *doing)
{
    PyErr_Format(SQLiteError, "%s: %s", doing, db ? sqlite3_errmsg(db) : "out of memory");
    return NULL;
}

static void
rows_close(SQLiteRows *self)
{
    if (self->stmt != NULL) {
        sqlite3_finalize(self->stmt);
        self->stmt = NULL;
    }
    if (self->leaves != NULL) {
        sqlite3_finalize(self->leaves);
        self->leaves = NULL;
    }
    for (int i = 0; i < 2; i++) {
        if (self->hashes[i] != NULL) {
            sqlite3_finalize(self->hashes[i]);
            self->hashes[i] = NULL;
        }
    }
    if (self->rollups != NULL) {
        sqlite3_finalize(self->rollups);
        self->rollups = NULL;
    }
    if (self->db != NULL) {
        sqlite3_close_v2(self->db);
        self->db = NULL;
    }
}

static int
rows_init(SQLiteRows *self, PyObject *args, PyObject *kwargs)
{
    const char *path, *sql, *leaves = NULL, *hashes[2] = {NULL, NULL}, *rollups = NULL;
    static char *names[] = {"path", "sql", "leaves", "nodes", "pangea", "rollups", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ss|zzzz:SQLiteRows", names, &path, &sql,
                                     &leaves, &hashes[0], &hashes[1], &rollups)) {
        return -1;
    }
    rows_close(self);
    int rc = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(self->db, 10000);
        /* a read-only scan of the whole file: pages mapped, not copied by read() */
        rc = sqlite3_exec(self->db, "PRAGMA query_only=ON; PRAGMA mmap_size=2147418112", NULL,
                          NULL, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_prepare_v2(self->db, sql, -1, &self->stmt, NULL);
    }
    if (rc == SQLITE_OK && leaves != NULL) {
        rc = sqlite3_prepare_v2(self->db, leaves, -1, &self->leaves, NULL);
    }
    for (int i = 0; i < 2; i++) {
        if (rc == SQLITE_OK && hashes[i] != NULL) {
            rc = sqlite3_prepare_v2(self->db, hashes[i], -1, &self->hashes[i], NULL);
        }
    }
    if (rc == SQLITE_OK && rollups != NULL) {
        rc = sqlite3_prepare_v2(self->db, rollups, -1, &self->rollups, NULL);
    }
    if (rc != SQLITE_OK) {
        sqlite_failed(self->db, "cannot open the database to audit");
        rows_close(self);
        return -1;
    }
    if (sqlite3_column_count(self->stmt) != F_COUNT || sqlite3_bind_parameter_count(self->stmt) != 3 ||
        (self->leaves != NULL && (sqlite3_column_count(self->leaves) != 2 ||
                                  sqlite3_bind_parameter_count(self->leaves) != 3)) ||
        (self->hashes[0] != NULL && (sqlite3_column_count(self->hashes[0]) != 1 ||
                                     sqlite3_bind_parameter_count(self->hashes[0]) != 4)) ||
        (self->hashes[1] != NULL && (sqlite3_column_count(self->hashes[1]) != 1 ||
                                     sqlite3_bind_parameter_count(self->hashes[1]) != 4)) ||
        (self->rollups != NULL && (sqlite3_column_count(self->rollups) != 4 ||
                                   sqlite3_bind_parameter_count(self->rollups) != 1))) {
        rows_close(self);
        PyErr_Format(PyExc_ValueError,
                     "SQLiteRows takes a query of 3 parameters and %d columns, leaves of 3"
                     " parameters and 2 columns (seq, hash), nodes and pangea of 4 parameters"
                     " and 1 column, rollups of 1 parameter and 4 columns", F_COUNT);
        return -1;
    }
    return 0;
}

static void
rows_dealloc(SQLiteRows *self)
{
    rows_close(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* A stepped row as a tuple, as the sqlite3 module would give it. */
static PyObject *
statement_as_tuple(const Row *row)
{
    PyObject *tuple = PyTuple_New(F_COUNT);
    for (int i = 0; tuple != NULL && i < F_COUNT; i++) {
        PyObject *value;
        int at = i;
        sqlite3_stmt *s = row_column(row, &at);
        switch (s == NULL ? SQLITE_NULL : sqlite3_column_type(s, at)) {
        case SQLITE_INTEGER: value = PyLong_FromLongLong(sqlite3_column_int64(s, at)); break;
        case SQLITE_FLOAT: value = PyFloat_FromDouble(sqlite3_column_double(s, at)); break;
        case SQLITE_TEXT:
            value = PyUnicode_DecodeUTF8((const char *)sqlite3_column_text(s, at),
                                         sqlite3_column_bytes(s, at), NULL);
            break;
        case SQLITE_BLOB: {
            const void *data = sqlite3_column_blob(s, at);
            value = PyBytes_FromStringAndSize(data ? data : "", sqlite3_column_bytes(s, at));
            break;
        }
        default: value = Py_NewRef(Py_None);
        }
        if (value == NULL) {
            Py_CLEAR(tuple);
            break;
        }
        PyTuple_SET_ITEM(tuple, i, value);
    }
    return tuple;
}

PyDoc_STRVAR(rows_check_doc,
"check(tenant_id, start, end, tenant_json, loads, watch, tally, /)\n--\n\n"
"Run the query for (tenant_id, start, end), one read transaction, and check its rows as\n"
"check_rows() does; the rows not vouched for come back as the sqlite3 module gives them.");

static PyObject *
rows_check(SQLiteRows *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError, "check() takes 7 arguments (%zd given)", nargs);
        return NULL;
    }
    if (self->stmt == NULL) {
        PyErr_SetString(PyExc_ValueError, "SQLiteRows is closed");
        return NULL;
    }
    Py_ssize_t tenant_size;
    const char *tenant = PyUnicode_AsUTF8AndSize(args[0], &tenant_size);
    long long start = PyLong_AsLongLong(args[1]), end = PyLong_AsLongLong(args[2]);
    if (tenant == NULL || PyErr_Occurred() ||
        check_arguments(args[3], args[4], args[5], args[6]) < 0) {
        return NULL;
    }
    Chunk c;
    if (chunk_init(&c, start, end, args[5]) < 0) {
        chunk_clear(&c);
        return NULL;
    }
    c.tally = args[6];
    Walk *w = walk_new();
    if (w == NULL) {
        chunk_clear(&c);
        return NULL;
    }
    sqlite3_stmt *s = self->stmt, *ls = self->leaves;
    sqlite3_reset(s);
    if (ls != NULL) {
        sqlite3_reset(ls);
    }
    /* one read transaction: both statements read the same snapshot */
    int rc = sqlite3_exec(self->db, "BEGIN", NULL, NULL, NULL);
    int began = rc == SQLITE_OK;
    for (int k = 0; k < (ls != NULL ? 2 : 1); k++) {
        sqlite3_stmt *q = k ? ls : s;
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_text(q, 1, tenant, (int)tenant_size, SQLITE_TRANSIENT);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_int64(q, 2, start);
        }
        if (rc == SQLITE_OK) {
            rc = sqlite3_bind_int64(q, 3, end);
        }
    }
    /* the leaves in seq order, stepped beside the rows (a merge, not a lookup per row) */
    int lrc = ls != NULL && rc == SQLITE_OK ? sqlite3_step(ls) : SQLITE_DONE;
    Row row = {s, NULL, ls != NULL, NULL};
    while ((rc == SQLITE_OK || rc == SQLITE_ROW) && (lrc == SQLITE_ROW || lrc == SQLITE_DONE)) {
        rc = sqlite3_step(s);
        if (rc != SQLITE_ROW) {
            break;
        }
        if (ls != NULL) {
            row.leaf = NULL;
            if (sqlite3_column_type(s, F_SEQ) == SQLITE_INTEGER) {
                sqlite3_int64 seq = sqlite3_column_int64(s, F_SEQ);
                while (lrc == SQLITE_ROW && sqlite3_column_int64(ls, 0) < seq) {
                    lrc = sqlite3_step(ls);
                }
                if (lrc == SQLITE_ROW && sqlite3_column_int64(ls, 0) == seq) {
                    row.leaf = ls;
                }
            }
            if (lrc != SQLITE_ROW && lrc != SQLITE_DONE) {
                break;
            }
        }
        if (chunk_add(&c, &row, w, args[3], args[4], statement_as_tuple) < 0) {
            goto failed;
        }
    }
    if (rc != SQLITE_DONE || (lrc != SQLITE_ROW && lrc != SQLITE_DONE)) {
        sqlite_failed(self->db, "SQLite read failed");
        goto failed;
    }
    sqlite3_reset(s);
    if (ls != NULL) {
        sqlite3_reset(ls);
    }
    if (began && sqlite3_exec(self->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite_failed(self->db, "SQLite read failed");
        goto failed;
    }
    walk_free(w);
    return chunk_result(&c);
failed:
    sqlite3_reset(s);
    if (ls != NULL) {
        sqlite3_reset(ls);
    }
    if (began) {
        sqlite3_exec(self->db, "ROLLBACK", NULL, NULL, NULL);
    }
    walk_free(w);
    chunk_clear(&c);
    return NULL;
}

PyDoc_STRVAR(rows_hashes_doc,
"hashes(tree, tenant_id, level, start, end, /)\n--\n\n"
"Run the `nodes` (tree 0) or `pangea` (tree 1) query for (tenant_id, level, start, end): the\n"
"hashes it gives, concatenated, if they are end - start of 32 bytes each; else b\"\".");

static PyObject *
rows_hashes(SQLiteRows *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "hashes() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    long tree = PyLong_AsLong(args[0]);
    Py_ssize_t tenant_size;
    const char *tenant = PyUnicode_AsUTF8AndSize(args[1], &tenant_size);
    long long level = PyLong_AsLongLong(args[2]), start = PyLong_AsLongLong(args[3]),
              end = PyLong_AsLongLong(args[4]);
    if (tenant == NULL || PyErr_Occurred()) {
        return NULL;
    }
    sqlite3_stmt *q = tree == 0 || tree == 1 ? self->hashes[tree] : NULL;
    if (q == NULL || end < start || end - start > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "hashes(): no such query, or a range past 2**24");
        return NULL;
    }
    Py_ssize_t count = (Py_ssize_t)(end - start);
    PyObject *out = PyBytes_FromStringAndSize(NULL, count * SHA256_DIGEST_LENGTH);
    if (out == NULL) {
        return NULL;
    }
    char *at = PyBytes_AS_STRING(out);
    sqlite3_reset(q);
    int rc = sqlite3_bind_text(q, 1, tenant, (int)tenant_size, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 2, level);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 3, start);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 4, end);
    }
    Py_ssize_t found = 0;
    int whole = 1;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(q);
        if (rc != SQLITE_ROW) {
            break;
        }
        if (found == count || sqlite3_column_type(q, 0) != SQLITE_BLOB ||
            sqlite3_column_bytes(q, 0) != SHA256_DIGEST_LENGTH) {
            whole = 0;
            continue;
        }
        memcpy(at + found * SHA256_DIGEST_LENGTH, sqlite3_column_blob(q, 0), SHA256_DIGEST_LENGTH);
        found++;
    }
    sqlite3_reset(q);
    if (rc != SQLITE_DONE) {
        Py_DECREF(out);
        return sqlite_failed(self->db, "SQLite read failed");
    }
    if (!whole || found != count) {
        Py_DECREF(out);
        return PyBytes_FromStringAndSize("", 0);
    }
    return out;
}

PyDoc_STRVAR(rows_rollups_match_doc,
"rollups_match(tenant_id, tally, /)\n--\n\n"
"Run the `rollups` query for tenant_id: whether the rows it gives, (dimension, period, value,\n"
"n) with n != 0, are exactly tally.expected() (Tally.matches() without a Python object per\n"
"stored row).");

static PyObject *
rows_rollups_match(SQLiteRows *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyObject_TypeCheck(args[1], &TallyType)) {
        PyErr_SetString(PyExc_TypeError, "rollups_match() takes a tenant id and a Tally");
        return NULL;
    }
    Py_ssize_t tenant_size;
    const char *tenant = PyUnicode_AsUTF8AndSize(args[0], &tenant_size);
    if (tenant == NULL) {
        return NULL;
    }
    if (self->rollups == NULL) {
        PyErr_SetString(PyExc_ValueError, "SQLiteRows: no rollups query, or closed");
        return NULL;
    }
    sqlite3_reset(self->rollups);
    if (sqlite3_bind_text(self->rollups, 1, tenant, (int)tenant_size, SQLITE_TRANSIENT) !=
        SQLITE_OK) {
        return sqlite_failed(self->db, "SQLite read failed");
    }
    int equal = tally_matches_statement((Tally *)args[1], self->rollups, self->db);
    return equal < 0 ? NULL : PyBool_FromLong(equal);
}

static PyObject *
rows_close_method(SQLiteRows *self, PyObject *unused)
{
    (void)unused;
    rows_close(self);
    Py_RETURN_NONE;
}

static PyMethodDef rows_methods[] = {
    {"check", (PyCFunction)(void (*)(void))rows_check, METH_FASTCALL, rows_check_doc},
    {"hashes", (PyCFunction)(void (*)(void))rows_hashes, METH_FASTCALL, rows_hashes_doc},
    {"rollups_match", (PyCFunction)(void (*)(void))rows_rollups_match, METH_FASTCALL,
     rows_rollups_match_doc},
    {"close", (PyCFunction)rows_close_method, METH_NOARGS, "Close the connection."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject SQLiteRowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trailkeep.model._fastleaf.SQLiteRows",
    .tp_doc = PyDoc_STR("SQLiteRows(path, sql): a read-only connection of its own to a SQLite\n"
                        "database and an audit query (3 parameters: tenant, start, end; the\n"
                        "columns of AUDIT_FIELDS), for check()."),
    .tp_basicsize = sizeof(SQLiteRows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rows_init,
    .tp_dealloc = (destructor)rows_dealloc,
    .tp_methods = rows_methods,
};

PyDoc_STRVAR(parents_doc,
"parents(nodes, /)\n--\n\n"
"One level up an RFC 9162 tree: SHA-256(0x01 || left || right) of each pair of a list of\n"
"32-byte hashes of even length.");

static PyObject *
parents(PyObject *module, PyObject *nodes)
{
    (void)module;
    if (!PyList_Check(nodes) || PyList_GET_SIZE(nodes) % 2) {
        PyErr_SetString(PyExc_ValueError, "parents() takes a list of even length");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(nodes) / 2;
    PyObject *out = PyList_New(count);
    unsigned char input[1 + 2 * SHA256_DIGEST_LENGTH], digest[SHA256_DIGEST_LENGTH];
    input[0] = 1;
    for (Py_ssize_t i = 0; out != NULL && i < count; i++) {
        PyObject *left = PyList_GET_ITEM(nodes, 2 * i), *right = PyList_GET_ITEM(nodes, 2 * i + 1);
        if (!PyBytes_CheckExact(left) || !PyBytes_CheckExact(right) ||
            PyBytes_GET_SIZE(left) != SHA256_DIGEST_LENGTH ||
            PyBytes_GET_SIZE(right) != SHA256_DIGEST_LENGTH) {
            PyErr_SetString(PyExc_ValueError, "parents() takes 32-byte hashes");
            Py_CLEAR(out);
            break;
        }
        memcpy(input + 1, PyBytes_AS_STRING(left), SHA256_DIGEST_LENGTH);
        memcpy(input + 1 + SHA256_DIGEST_LENGTH, PyBytes_AS_STRING(right), SHA256_DIGEST_LENGTH);
        SHA256_CTX ctx;
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, input, sizeof input);
        SHA256_Final(digest, &ctx);
        PyObject *node = PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
        if (node == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, node);
    }
    return out;
}

PyDoc_STRVAR(climb_doc,
"climb(leaves, prefix, /)\n--\n\n"
"Every level of the subtree over `leaves`, 2**k 32-byte hashes concatenated: a list of k\n"
"bytes, level 1 to level k (the last is the subtree's root), each the level's nodes\n"
"concatenated. An interior node is SHA-256(0x01 || left || right) if prefix (RFC 9162), else\n"
"SHA-256(left || right) (Pangea's tree).");

static PyObject *
climb(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "climb() takes leaves (bytes) and prefix");
        return NULL;
    }
    int prefix = PyObject_IsTrue(args[1]);
    if (prefix < 0) {
        return NULL;
    }
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t count = size / SHA256_DIGEST_LENGTH;
    if (size % SHA256_DIGEST_LENGTH || count == 0 || (count & (count - 1))) {
        PyErr_SetString(PyExc_ValueError, "climb() takes 2**k 32-byte hashes");
        return NULL;
    }
    PyObject *levels = PyList_New(0);
    const unsigned char *below = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    unsigned char input[1 + 2 * SHA256_DIGEST_LENGTH];
    input[0] = 1;
    unsigned char *pair = prefix ? input + 1 : input;
    size_t pair_size = prefix ? sizeof input : sizeof input - 1;
    while (levels != NULL && count > 1) {
        count /= 2;
        PyObject *level = PyBytes_FromStringAndSize(NULL, count * SHA256_DIGEST_LENGTH);
        if (level == NULL) {
            Py_CLEAR(levels);
            break;
        }
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(level);
        for (Py_ssize_t i = 0; i < count; i++) {
            SHA256_CTX ctx;
            memcpy(pair, below + 2 * i * SHA256_DIGEST_LENGTH, 2 * SHA256_DIGEST_LENGTH);
            SHA256_Init(&ctx);
            SHA256_Update(&ctx, prefix ? input : pair, pair_size);
            SHA256_Final(out + i * SHA256_DIGEST_LENGTH, &ctx);
        }
        int failed = PyList_Append(levels, level) < 0;
        Py_DECREF(level);
        if (failed) {
            Py_CLEAR(levels);
            break;
        }
        below = out; /* the bytes object lives on in the list */
    }
    return levels;
}

static int
intern_keys(void)
{
    struct { PyObject **slot; const char *text; } keys[] = {
        {&k_timestamp, "timestamp"}, {&k_action, "action"}, {&k_category, "category"},
        {&k_outcome, "outcome"}, {&k_actor, "actor"}, {&k_target, "target"},
        {&k_source, "source"}, {&k_session_id, "session_id"}, {&k_request_id, "request_id"},
        {&k_trace_id, "trace_id"}, {&k_idempotency_key, "idempotency_key"},
        {&k_message, "message"}, {&k_id, "id"}, {&k_email, "email"}, {&k_type, "type"},
        {&k_ip, "ip"}, {&k_client_id, "client_id"}, {&s_unknown, "unknown"},
        {&s_event_redact, "event.redact"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (*keys[i].slot == NULL && (*keys[i].slot = PyUnicode_InternFromString(keys[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static PyObject *bundle_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
static PyObject *bundle_chunk(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
PyDoc_STRVAR(bundle_chunk_doc,
"bundle_chunk(chunk, seq, limit, tenant_id, tenant_json, loads, /)\n--\n\n"
"bundle_events() over the lines of chunk (bytes of whole lines, each ending in \\n) with no bytes\n"
"object per line: (items, declined), items[n] the leaf of the line at seq + n, or for each n\n"
"in declined (ascending) that line's bytes; None if chunk has more than limit lines.");
PyDoc_STRVAR(bundle_events_doc,
"bundle_events(lines, seq, tenant_id, tenant_json, loads, /)\n--\n\n"
"The leaf hashes of a bundle's lines, the n-th at seq + n, each None unless loads(line) is\n"
"{\"event\": E, \"salts\": S, \"redacted\": {}} with E an unredacted event of tenant_id at that\n"
"seq, every field of it salted in S, whose leaf (as leaf() writes it) is E's hash.");

static PyMethodDef methods[] = {
    {"prefix", (PyCFunction)(void (*)(void))prefix, METH_FASTCALL, prefix_doc},
    {"leaf", (PyCFunction)(void (*)(void))leaf, METH_FASTCALL, leaf_doc},
    {"commit", (PyCFunction)(void (*)(void))commit, METH_FASTCALL, commit_doc},
    {"check_rows", (PyCFunction)(void (*)(void))check_rows, METH_FASTCALL, check_rows_doc},
    {"parents", (PyCFunction)parents, METH_O, parents_doc},
    {"bundle_events", (PyCFunction)(void (*)(void))bundle_events, METH_FASTCALL, bundle_events_doc},
    {"bundle_chunk", (PyCFunction)(void (*)(void))bundle_chunk, METH_FASTCALL, bundle_chunk_doc},
    {"climb", (PyCFunction)(void (*)(void))climb, METH_FASTCALL, climb_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "trailkeep.model._fastleaf",
    .m_doc = "One event's RFC 9162 leaf hash in a single call: see model/evidence.py.",
    .m_size = 0,
    .m_methods = methods,
};

PyMODINIT_FUNC
PyInit__fastleaf(void)
{
    init_tables();
    if (intern_keys() < 0 || PyType_Ready(&SQLiteRowsType) < 0 || PyType_Ready(&TallyType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (SQLiteError == NULL) {
        SQLiteError = PyErr_NewException("trailkeep.model._fastleaf.SQLiteError", NULL, NULL);
    }
    /* the leaf layout written by add_positions: evidence.py uses this module only if it matches */
    if (SQLiteError == NULL || PyModule_AddIntConstant(m, "LEAF_VERSION", 1) < 0 ||
        PyModule_AddObjectRef(m, "SQLiteError", SQLiteError) < 0 ||
        PyModule_AddObjectRef(m, "SQLiteRows", (PyObject *)&SQLiteRowsType) < 0 ||
        PyModule_AddObjectRef(m, "Tally", (PyObject *)&TallyType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* -- bundle_events: a bundle's event lines, parsed and checked a batch per call ---------------
 *
 * The common line of a whole-tenant bundle is {"event": E, "salts": S, "redacted": {}}: E an
 * unredacted event whose every field is salted. This does for a batch of such lines what
 * model/evidence.py's plans and leaf() do for one event each (the same checks of the event's
 * shape, then leaf()'s own), so the Python loop runs only for the lines it declines. */

#define BUNDLE_MAX_FIELDS 64

static PyObject *b_event, *b_salts, *b_redacted, *b_tenant_id, *b_seq, *b_received_at, *b_hash,
    *b_id, *b_objects[4];

static int
bundle_intern(void)
{
    struct { PyObject **slot; const char *text; } keys[] = {
        {&b_event, "event"}, {&b_salts, "salts"}, {&b_redacted, "redacted"},
        {&b_tenant_id, "tenant_id"}, {&b_seq, "seq"}, {&b_received_at, "received_at"},
        {&b_hash, "hash"}, {&b_id, "id"},
        /* commitments.COMMITTED_OBJECTS: their members are committed one by one */
        {&b_objects[0], "actor"}, {&b_objects[1], "target"}, {&b_objects[2], "source"},
        {&b_objects[3], "metadata"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (*keys[i].slot == NULL && (*keys[i].slot = PyUnicode_InternFromString(keys[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

typedef struct {
    const char *path;
    Py_ssize_t size;
    PyObject *salt, *value; /* borrowed */
} BundleField;

/* JCS orders keys by UTF-16 code units: for the ASCII paths taken here, by bytes. */
static int
bundle_field_before(const BundleField *a, const BundleField *b)
{
    Py_ssize_t n = a->size < b->size ? a->size : b->size;
    int c = memcmp(a->path, b->path, (size_t)n);
    return c < 0 || (c == 0 && a->size < b->size);
}

/* A dict's value (borrowed), or NULL with no exception when the key is absent. */
static PyObject *
bundle_get(PyObject *dict, PyObject *key, int *failed)
{
    PyObject *value = PyDict_GetItemWithError(dict, key);
    if (value == NULL && PyErr_Occurred()) {
        *failed = 1;
    }
    return value;
}

/* The leaf of one parsed line into `digest`: 1 if the line is of the common case and its
 * event's leaf is its hash, 0 if not, -1 with an exception set. */
static int
bundle_line_leaf(PyObject *record, long long seq, PyObject *tenant, PyObject *tenant_json,
                 Buffer *text, Buffer *field, unsigned char digest[SHA256_DIGEST_LENGTH])
{
    int failed = 0;
    if (!PyDict_CheckExact(record)) {
        return 0;
    }
    PyObject *event = bundle_get(record, b_event, &failed);
    PyObject *salts = bundle_get(record, b_salts, &failed);
    PyObject *redacted = bundle_get(record, b_redacted, &failed);
    if (failed) {
        return -1;
    }
    if (event == NULL || salts == NULL || redacted == NULL || !PyDict_CheckExact(event) ||
        !PyDict_CheckExact(salts) || !PyDict_CheckExact(redacted) || PyDict_GET_SIZE(redacted)) {
        return 0;
    }
    PyObject *event_id = bundle_get(event, b_id, &failed);
    PyObject *tenant_id = bundle_get(event, b_tenant_id, &failed);
    PyObject *position = bundle_get(event, b_seq, &failed);
    PyObject *received_at = bundle_get(event, b_received_at, &failed);
    PyObject *hash = bundle_get(event, b_hash, &failed);
    if (failed) {
        return -1;
    }
    if (event_id == NULL || tenant_id == NULL || position == NULL || received_at == NULL ||
        hash == NULL || !PyUnicode_CheckExact(tenant_id) || !PyLong_CheckExact(position) ||
        !is_plain_ascii(event_id) || !is_received_at(received_at) ||
        !PyUnicode_CheckExact(hash) || !PyUnicode_IS_COMPACT_ASCII(hash) ||
        PyUnicode_GET_LENGTH(hash) != 2 * SHA256_DIGEST_LENGTH) {
        return 0;
    }
    int overflow;
    long long at = PyLong_AsLongLongAndOverflow(position, &overflow);
    if (overflow || at != seq || at < 0 || at > MAX_SAFE_INTEGER) {
        return 0;
    }
    int same = PyUnicode_Compare(tenant_id, tenant);
    if (same == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (same != 0) {
        return 0;
    }
    Py_ssize_t count = PyDict_GET_SIZE(salts);
    if (count < 1 || count > BUNDLE_MAX_FIELDS) {
        return 0;
    }
    BundleField fields[BUNDLE_MAX_FIELDS];
    Py_ssize_t members[4] = {0, 0, 0, 0}, top = 0, n = 0, pos = 0;
    PyObject *path, *salt;
    while (PyDict_Next(salts, &pos, &path, &salt)) {
        if (!is_plain_ascii(path)) {
            return 0;
        }
        const char *s = (const char *)PyUnicode_1BYTE_DATA(path);
        Py_ssize_t size = PyUnicode_GET_LENGTH(path);
        const char *dot = memchr(s, '.', (size_t)size);
        PyObject *value;
        if (dot == NULL) {
            /* a top-level field: never a server field, nor an object committed member-wise */
            if (PyDict_Contains(event, path) != 1) {
                return PyErr_Occurred() ? -1 : 0;
            }
            for (int j = 0; j < 4; j++) {
                if (PyUnicode_Compare(path, b_objects[j]) == 0) {
                    return 0;
                }
            }
            if (PyUnicode_Compare(path, b_id) == 0 || PyUnicode_Compare(path, b_tenant_id) == 0 ||
                PyUnicode_Compare(path, b_seq) == 0 || PyUnicode_Compare(path, b_received_at) == 0 ||
                PyUnicode_Compare(path, b_hash) == 0) {
                return 0;
            }
            value = bundle_get(event, path, &failed);
            top++;
        } else {
            int j = 0;
            for (; j < 4; j++) {
                Py_ssize_t length = PyUnicode_GET_LENGTH(b_objects[j]);
                if (dot - s == length &&
                    memcmp(s, PyUnicode_1BYTE_DATA(b_objects[j]), (size_t)length) == 0) {
                    break;
                }
            }
            if (j == 4) {
                return 0; /* a dotted name that is not a committed object's member */
            }
            PyObject *object = bundle_get(event, b_objects[j], &failed);
            if (failed) {
                return -1;
            }
            if (object == NULL || !PyDict_CheckExact(object)) {
                return 0;
            }
            PyObject *key = PyUnicode_FromStringAndSize(dot + 1, size - (dot + 1 - s));
            if (key == NULL) {
                return -1;
            }
            value = bundle_get(object, key, &failed);
            Py_DECREF(key);
            members[j]++;
        }
        if (failed) {
            return -1;
        }
        if (value == NULL) {
            return 0;
        }
        fields[n].path = s;
        fields[n].size = size;
        fields[n].salt = salt;
        fields[n].value = value;
        n++;
    }
    /* nothing unsalted: the event holds its five server fields, the salted top-level fields
     * and the objects, each with exactly its salted members */
    Py_ssize_t expected = 5 + top;
    for (int j = 0; j < 4; j++) {
        if (members[j]) {
            PyObject *object = PyDict_GetItemWithError(event, b_objects[j]);
            if (object == NULL || PyDict_GET_SIZE(object) != members[j]) {
                return PyErr_Occurred() ? -1 : 0;
            }
            expected++;
        }
    }
    if (PyDict_GET_SIZE(event) != expected) {
        return 0;
    }
    for (Py_ssize_t i = 1; i < n; i++) { /* insertion sort: a few dozen fields at most */
        BundleField f = fields[i];
        Py_ssize_t k = i;
        for (; k > 0 && bundle_field_before(&f, &fields[k - 1]); k--) {
            fields[k] = fields[k - 1];
        }
        fields[k] = f;
    }
    text->size = 0;
    if (ADD(text, "\x00{\"commitments\":{") < 0) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((i && ADD(text, ",") < 0) || ADD(text, "\"") < 0 ||
            buffer_add(text, fields[i].path, (size_t)fields[i].size) < 0 || ADD(text, "\":\"") < 0) {
            return -1;
        }
        int added = add_commitment(text, field, fields[i].salt, NULL, fields[i].value);
        if (added <= 0) {
            return added;
        }
        if (ADD(text, "\"") < 0) {
            return -1;
        }
    }
    if (add_positions(text, event_id, received_at, at, tenant_json) < 0) {
        return -1;
    }
    buffer_sha256(text, digest);
    const unsigned char *want = PyUnicode_1BYTE_DATA(hash);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        if (want[2 * i] != hex_digits[digest[i] >> 4] ||
            want[2 * i + 1] != hex_digits[digest[i] & 0xf]) {
            return 0;
        }
    }
    return 1;
}

/* A line scanned as bytes, before any Python object is made: the common line as the export
 * writes it (orjson: no whitespace), {"event": E, "salts": S, "redacted": {}} in any order; E's
 * server fields id (printable ASCII), tenant_id (the tenant's JSON spelled as tenant_json), seq
 * (this one), received_at (the server's form) and hash (64 lowercase hex digits); its other
 * keys printable ASCII with no dot, each a string, a safe integer or a boolean, or (actor,
 * target, source, metadata) an object of at least one such member; S the canonical base64 salt
 * of exactly each of those paths. Whatever else (a null, a float, a list, an escape in a key,
 * a repeated key, whitespace, an erasure) is declined (0) for bundle_line_leaf's path, which
 * answers as before; so is a line whose leaf is not its hash. 1 with the leaf in `digest`, -1
 * with an exception set. */

#define BUNDLE_SERVER_FIELDS 5

typedef struct {
    const char *path;
    Py_ssize_t size;
    const char *salt; /* its base64 text */
    uint64_t head;
} BundleSalt;

/* A key is a literal: its length first, no strlen. */
#define KEY_LIT(slice, literal)                                                                 \
    ((slice).size == (Py_ssize_t)sizeof(literal) - 1 &&                                         \
     memcmp((slice).data, (literal), sizeof(literal) - 1) == 0)

/* Which committed object a key names (0-3: actor, target, source, metadata), or -1. */
static int
bundle_object(const Slice *key)
{
    return KEY_LIT(*key, "actor") ? 0 : KEY_LIT(*key, "target") ? 1 : KEY_LIT(*key, "source") ? 2
         : KEY_LIT(*key, "metadata") ? 3 : -1;
}

/* Which server field a key names (0-4: id, tenant_id, seq, received_at, hash), or -1. */
static int
bundle_server_field(const Slice *key)
{
    return KEY_LIT(*key, "id") ? 0 : KEY_LIT(*key, "tenant_id") ? 1 : KEY_LIT(*key, "seq") ? 2
         : KEY_LIT(*key, "received_at") ? 3 : KEY_LIT(*key, "hash") ? 4 : -1;
}

/* One committed object's members at *p (past its "{"): each a scalar that is no null. A
 * repeated member repeats its path, which sort_fields declines. */
static int
bundle_scan_members(Walk *w, const char **p, const char *end, const Slice *name)
{
    for (;;) {
        Slice sub, value;
        if (!scan_key(p, end, &sub) || memchr(sub.data, '.', (size_t)sub.size) != NULL ||
            !scan_scalar(w, p, end, &value) || value.kind == 'z') {
            return 0;
        }
        size_t need = (size_t)(name->size + 1 + sub.size);
        if (w->used + need > ARENA_SIZE) {
            return 0;
        }
        char *path = w->arena + w->used;
        memcpy(path, name->data, (size_t)name->size);
        path[name->size] = '.';
        memcpy(path + name->size + 1, sub.data, (size_t)sub.size);
        w->used += need;
        if (!add_slice_field(w, path, (Py_ssize_t)need, &value) || *p >= end) {
            return 0;
        }
        if (**p == '}') {
            (*p)++;
            return 1;
        }
        if (**p != ',') {
            return 0;
        }
        (*p)++;
    }
}

/* The event object at *p (at its "{"): its fields into w, its server fields into `server`
 * (id, tenant_id as its raw JSON, seq as its digits, received_at, hash), in that order. A key
 * is never taken twice: a server field or an object by their own marks, any other by its path,
 * which sort_fields declines when repeated. */
static int
bundle_scan_event(Walk *w, const char **p, const char *end, Slice server[BUNDLE_SERVER_FIELDS])
{
    int objects = 0; /* a bit per committed object seen */
    if (*p >= end || **p != '{') {
        return 0;
    }
    (*p)++;
    for (;;) {
        Slice key, value;
        if (!scan_key(p, end, &key) || memchr(key.data, '.', (size_t)key.size) != NULL ||
            *p >= end) {
            return 0;
        }
        int at = bundle_server_field(&key), object = at < 0 ? bundle_object(&key) : -1;
        if (at >= 0) {
            const char *raw = *p;
            /* no Walk: a server field's string with an escape is declined */
            if (server[at].kind != 0 || !scan_scalar(NULL, p, end, &value) ||
                value.kind != (at == 2 ? 'n' : 's')) {
                return 0;
            }
            server[at] = at == 1 ? (Slice){raw, *p - raw, 's'} : value;
        } else if (object >= 0) {
            if (**p != '{' || objects & (1 << object)) {
                return 0;
            }
            objects |= 1 << object;
            (*p)++;
            if (!bundle_scan_members(w, p, end, &key)) {
                return 0;
            }
        } else if (!scan_scalar(w, p, end, &value) || value.kind == 'z' ||
                   !add_slice_field(w, key.data, key.size, &value)) {
            return 0;
        }
        if (*p >= end) {
            return 0;
        }
        if (**p == '}') {
            (*p)++;
            return 1;
        }
        if (**p != ',') {
            return 0;
        }
        (*p)++;
    }
}

/* The salts object at *p (at its "{"): path -> base64 text. */
static int
bundle_scan_salts(const char **p, const char *end, BundleSalt *salts, int *count)
{
    *count = 0;
    if (*p >= end || **p != '{') {
        return 0;
    }
    (*p)++;
    for (;;) {
        Slice key, value;
        if (*count == MAX_FIELDS || !scan_key(p, end, &key) || *p >= end || **p != '"') {
            return 0;
        }
        (*p)++;
        if (!scan_string(NULL, p, end, &value) || value.size != SALT_CHARS) {
            return 0;
        }
        salts[(*count)++] =
            (BundleSalt){key.data, key.size, value.data, path_head(key.data, key.size)};
        if (*p >= end) {
            return 0;
        }
        if (**p == '}') {
            (*p)++;
            return 1;
        }
        if (**p != ',') {
            return 0;
        }
        (*p)++;
    }
}

static int
bundle_salt_before(const BundleSalt *a, const BundleSalt *b)
{
    if (a->head != b->head) {
        return a->head < b->head;
    }
    Py_ssize_t n = a->size < b->size ? a->size : b->size;
    int c = memcmp(a->path, b->path, (size_t)n);
    return c < 0 || (c == 0 && a->size < b->size);
}

static int
bundle_scan_line(Walk *w, const char *line, Py_ssize_t size, long long seq,
                 PyObject *tenant_json, unsigned char digest[SHA256_DIGEST_LENGTH])
{
    const char *p = line, *end = line + size;
    Slice server[BUNDLE_SERVER_FIELDS];
    BundleSalt salts[MAX_FIELDS];
    int salt_count = 0, seen[3] = {0, 0, 0};
    memset(server, 0, sizeof server);
    w->count = 0;
    w->used = 0;
    w->decoded_used = 0;
    if (size < 2 || *p++ != '{') {
        return 0;
    }
    for (;;) {
        Slice key;
        if (!scan_key(&p, end, &key)) {
            return 0;
        }
        int which = KEY_LIT(key, "event") ? 0 : KEY_LIT(key, "salts") ? 1
                    : KEY_LIT(key, "redacted") ? 2 : -1;
        if (which < 0 || seen[which]++) {
            return 0;
        }
        if (which == 0 && !bundle_scan_event(w, &p, end, server)) {
            return 0;
        }
        if (which == 1 && !bundle_scan_salts(&p, end, salts, &salt_count)) {
            return 0;
        }
        if (which == 2) {
            if (end - p < 2 || p[0] != '{' || p[1] != '}') {
                return 0; /* erasures: bundle_line_leaf's path */
            }
            p += 2;
        }
        if (p >= end) {
            return 0;
        }
        if (*p == '}') {
            if (p + 1 != end) {
                return 0;
            }
            break;
        }
        if (*p != ',') {
            return 0;
        }
        p++;
    }
    if (!seen[0] || !seen[1] || !seen[2]) {
        return 0;
    }
    for (int i = 0; i < BUNDLE_SERVER_FIELDS; i++) {
        if (server[i].kind == 0) {
            return 0;
        }
    }
    /* the server fields: this tenant, this seq, the forms leaf() takes */
    Py_ssize_t tenant_size;
    const char *tenant = PyUnicode_AsUTF8AndSize(tenant_json, &tenant_size);
    if (tenant == NULL) {
        return -1;
    }
    long long at = 0;
    const Slice *n = &server[2];
    if (n->size > 16 || n->data[0] == '-') {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n->size; i++) {
        at = at * 10 + (n->data[i] - '0');
    }
    if (at != seq || server[1].size != tenant_size ||
        memcmp(server[1].data, tenant, (size_t)tenant_size) != 0 ||
        !plain_ascii_bytes(server[0].data, server[0].size) ||
        !received_at_bytes(server[3].data, server[3].size) ||
        server[4].size != 2 * SHA256_DIGEST_LENGTH) {
        return 0;
    }
    unsigned char want[SHA256_DIGEST_LENGTH];
    const unsigned char *hex = (const unsigned char *)server[4].data;
    int bad = 0;
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        signed char high = hex_value[hex[2 * i]], low = hex_value[hex[2 * i + 1]];
        bad |= high | low; /* -1 for anything but 0-9a-f */
        want[i] = (unsigned char)(high << 4 | low);
    }
    if (bad < 0) {
        return 0;
    }
    /* every field salted and nothing else: the same paths, each once, in JCS order */
    if (w->count == 0 || salt_count != w->count || !sort_fields(w)) {
        return 0;
    }
    for (int i = 1; i < salt_count; i++) {
        BundleSalt f = salts[i];
        int j = i;
        for (; j > 0 && bundle_salt_before(&f, &salts[j - 1]); j--) {
            salts[j] = salts[j - 1];
        }
        salts[j] = f;
    }
    unsigned char packed[MAX_FIELDS * SALT_SIZE];
    for (int i = 0; i < salt_count; i++) {
        const Field *f = &w->fields[i];
        if (f->size != salts[i].size || memcmp(f->path, salts[i].path, (size_t)f->size) != 0 ||
            !decode_salt_bytes((const unsigned char *)salts[i].salt, SALT_CHARS,
                               packed + i * SALT_SIZE)) {
            return 0;
        }
    }
    int matches = leaf_matches(w, (const char *)packed, (Py_ssize_t)salt_count * SALT_SIZE,
                               server[0].data, server[0].size, server[3].data, server[3].size,
                               at, tenant_json, (const char *)want);
    if (matches == 1) {
        memcpy(digest, want, SHA256_DIGEST_LENGTH);
    }
    return matches;
}

static PyObject *
bundle_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "bundle_events() takes 5 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *lines = args[0], *start = args[1], *tenant = args[2], *tenant_json = args[3];
    PyObject *loads = args[4];
    if (!PyList_CheckExact(lines) || !PyLong_CheckExact(start) || !PyUnicode_CheckExact(tenant) ||
        !PyUnicode_CheckExact(tenant_json) || !PyCallable_Check(loads)) {
        PyErr_SetString(PyExc_TypeError,
                        "bundle_events() takes a list, an int, two str and a callable");
        return NULL;
    }
    long long seq = PyLong_AsLongLong(start);
    if (seq == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (bundle_intern() < 0) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    Walk *w = walk_new();
    if (w == NULL) {
        Py_DECREF(out);
        return NULL;
    }
    Buffer text, field;
    buffer_init(&text);
    buffer_init(&field);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *line = PyList_GET_ITEM(lines, i);
        unsigned char digest[SHA256_DIGEST_LENGTH];
        /* the common line as bytes first; what that declines is parsed and checked below */
        int got = PyBytes_CheckExact(line)
                      ? bundle_scan_line(w, PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line),
                                         seq + i, tenant_json, digest)
                      : 0;
        if (got != 0) {
            PyObject *item = got < 0 ? NULL
                                     : PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
            if (item == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, i, item);
            continue;
        }
        PyObject *record = PyObject_CallOneArg(loads, line);
        if (record == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_ValueError) && !PyErr_ExceptionMatches(PyExc_TypeError)) {
                Py_CLEAR(out);
                break;
            }
            PyErr_Clear(); /* not JSON: the exact path names the line */
        } else {
            got = bundle_line_leaf(record, seq + i, tenant, tenant_json, &text, &field, digest);
            Py_DECREF(record);
        }
        PyObject *item = got < 0 ? NULL
                         : got ? PyBytes_FromStringAndSize((const char *)digest, sizeof digest)
                               : Py_NewRef(Py_None);
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, item);
    }
    buffer_free(&text);
    buffer_free(&field);
    walk_free(w);
    return out;
}

static PyObject *bundle_chunk_lines(const char *data, Py_ssize_t size, long long seq,
                                    long long limit, PyObject *tenant, PyObject *tenant_json,
                                    PyObject *loads);

/* bundle_chunk: bundle_events over the lines of one read (no bytes object per line unless the
 * line is declined). The lines are the pieces of `chunk` that end at each "\n". */
static PyObject *
bundle_chunk(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 6) {
        PyErr_Format(PyExc_TypeError, "bundle_chunk() takes 6 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *chunk = args[0], *tenant = args[3], *tenant_json = args[4], *loads = args[5];
    if (!PyObject_CheckBuffer(chunk) || !PyLong_CheckExact(args[1]) ||
        !PyLong_CheckExact(args[2]) || !PyUnicode_CheckExact(tenant) ||
        !PyUnicode_CheckExact(tenant_json) || !PyCallable_Check(loads)) {
        PyErr_SetString(PyExc_TypeError,
                        "bundle_chunk() takes bytes, two ints, two str and a callable");
        return NULL;
    }
    long long seq = PyLong_AsLongLong(args[1]), limit = PyLong_AsLongLong(args[2]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_buffer view; /* bytes, or a memoryview of a read: no copy */
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = bundle_chunk_lines(view.buf, view.len, seq, limit, tenant, tenant_json,
                                          loads);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
bundle_chunk_lines(const char *data, Py_ssize_t size, long long seq, long long limit,
                   PyObject *tenant, PyObject *tenant_json, PyObject *loads)
{
    if (size > 0 && data[size - 1] != '\n') {
        PyErr_SetString(PyExc_ValueError, "bundle_chunk() takes whole lines, each ending in \\n");
        return NULL;
    }
    Py_ssize_t count = 0;
    for (const char *p = data, *end = data + size; (p = memchr(p, '\n', (size_t)(end - p))) != NULL;
         p++) {
        count++;
    }
    if (count > limit) {
        Py_RETURN_NONE; /* lines past the range's end: the caller's line path says so */
    }
    if (bundle_intern() < 0) {
        return NULL;
    }
    PyObject *out = PyList_New(count), *declined = PyList_New(0);
    Walk *w = out == NULL || declined == NULL ? NULL : walk_new();
    if (w == NULL) {
        Py_XDECREF(out);
        Py_XDECREF(declined);
        return NULL;
    }
    Buffer text, field;
    buffer_init(&text);
    buffer_init(&field);
    const char *line = data;
    for (Py_ssize_t i = 0; i < count; i++) {
        const char *eol = memchr(line, '\n', (size_t)(data + size - line));
        Py_ssize_t length = eol - line;
        unsigned char digest[SHA256_DIGEST_LENGTH];
        PyObject *item = NULL, *raw = NULL;
        int got = bundle_scan_line(w, line, length, seq + i, tenant_json, digest);
        if (got == 0) { /* the parsed path, as bundle_events takes a line the scan declines */
            raw = PyBytes_FromStringAndSize(line, length);
            PyObject *record = raw == NULL ? NULL : PyObject_CallOneArg(loads, raw);
            if (record == NULL) {
                got = raw != NULL && (PyErr_ExceptionMatches(PyExc_ValueError) ||
                                      PyErr_ExceptionMatches(PyExc_TypeError))
                          ? 0
                          : -1;
                if (got == 0) {
                    PyErr_Clear(); /* not JSON: the exact path names the line */
                }
            } else {
                got = bundle_line_leaf(record, seq + i, tenant, tenant_json, &text, &field,
                                       digest);
                Py_DECREF(record);
            }
        }
        if (got > 0) {
            item = PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
            Py_XDECREF(raw);
        } else if (got == 0) {
            PyObject *at = PyLong_FromSsize_t(i);
            item = at == NULL || PyList_Append(declined, at) < 0 ? NULL : raw;
            Py_XDECREF(at);
            if (item == NULL) {
                Py_XDECREF(raw);
            }
        } else {
            Py_XDECREF(raw);
        }
        if (item == NULL) {
            Py_CLEAR(out);
            break;
        }
        PyList_SET_ITEM(out, i, item); /* a declined line: its bytes, for the caller's path */
        line = eol + 1;
    }
    buffer_free(&text);
    buffer_free(&field);
    walk_free(w);
    if (out == NULL) {
        Py_DECREF(declined);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, out, declined);
    Py_DECREF(out);
    Py_DECREF(declined);
    return result;
}
