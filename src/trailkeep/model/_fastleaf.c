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

#define SALT_SIZE 16
#define SALT_CHARS 24 /* 22 base64 characters and "==" */
#define MAX_SAFE_INTEGER 9007199254740991LL

static signed char b64_value[256]; /* -1 for bytes outside the standard alphabet */
static const char hex_digits[] = "0123456789abcdef";

static void
init_tables(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_value, -1, sizeof b64_value);
    for (int i = 0; i < 64; i++) {
        b64_value[(unsigned char)alphabet[i]] = (signed char)i;
    }
}

/* Decode a salt: 1 if `text` is the canonical base64 of 16 bytes, else 0. */
static int
decode_salt(PyObject *text, unsigned char out[SALT_SIZE])
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text) ||
        PyUnicode_GET_LENGTH(text) != SALT_CHARS) {
        return 0;
    }
    const unsigned char *s = PyUnicode_1BYTE_DATA(text);
    if (s[22] != '=' || s[23] != '=') {
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

/* Make room for `extra` more bytes; -1 with MemoryError set if there is none. */
static int
buffer_reserve(Buffer *b, size_t extra)
{
    if (b->size + extra <= b->capacity) {
        return 0;
    }
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

static int
buffer_add(Buffer *b, const void *bytes, size_t size)
{
    if (buffer_reserve(b, size) < 0) {
        return -1;
    }
    memcpy(b->data + b->size, bytes, size);
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
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        out[2 * i] = (unsigned char)hex_digits[digest[i] >> 4];
        out[2 * i + 1] = (unsigned char)hex_digits[digest[i] & 0xf];
    }
    b->size += 2 * SHA256_DIGEST_LENGTH;
    return 0;
}

/* Append a str's JCS form (RFC 8785 §3.2.2.2): 1 if done, 0 if it has none (a lone
 * surrogate), -1 on a memory error. */
static int
add_string(Buffer *b, PyObject *value)
{
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(value, &size);
    if (utf8 == NULL) {
        PyErr_Clear();
        return 0;
    }
    /* the longest it can get: every byte a \u00XX escape, and the quotes */
    if (buffer_reserve(b, 6 * (size_t)size + 2) < 0) {
        return -1;
    }
    unsigned char *out = b->data + b->size;
    *out++ = '"';
    for (Py_ssize_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)utf8[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = c;
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
    return 1;
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
        int length = snprintf(digits, sizeof digits, "%lld", n);
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
    int length = snprintf(digits, sizeof digits, "%lld", seq);
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

static PyMethodDef methods[] = {
    {"prefix", (PyCFunction)(void (*)(void))prefix, METH_FASTCALL, prefix_doc},
    {"leaf", (PyCFunction)(void (*)(void))leaf, METH_FASTCALL, leaf_doc},
    {"commit", (PyCFunction)(void (*)(void))commit, METH_FASTCALL, commit_doc},
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
    PyObject *m = PyModule_Create(&module);
    /* the leaf layout written by add_positions: evidence.py uses this module only if it matches */
    if (m != NULL && PyModule_AddIntConstant(m, "LEAF_VERSION", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
