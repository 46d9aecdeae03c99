/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

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
int
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
int
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
int
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
int
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

/* The leaf input of DESIGN §3, version 1, after the commitments: -1 on a memory error. */
int
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

FL_DOC(leaf_doc,
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

PyObject *
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

FL_DOC(commit_doc,
"commit(paths, values, pool, /)\n--\n\n"
"Ingest's salts and field commitments: for the n-th path p of the list `paths`, the salt\n"
"pool[16n:16n + 16] and SHA-256(salt + JCS(values[p])), as two dicts in the order of `paths`.\n"
"None if a value is not a str with a JCS form, a bool, or an int within +-(2**53 - 1).");

PyObject *
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

FL_DOC(prefix_doc,
"prefix(commitments, event_id, received_at, /)\n--\n\n"
"The leaf input up to its seq, as commitments.leaf_prefix writes it: b'{\"commitments\":{...},\n"
"\"id\":...,\"received_at\":...,\"seq\":'. None unless every path is printable ASCII free of quotes\n"
"and backslashes, the paths come in strictly increasing order (as JCS orders them), every\n"
"commitment is 32 bytes, the event id is such ASCII too and received_at is in the form\n"
"YYYY-MM-DDTHH:MM:SS.ffffffZ.");

PyObject *
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
