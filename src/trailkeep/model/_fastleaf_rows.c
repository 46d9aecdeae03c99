/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

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

static int
row_null(const Row *row, int i)
{
    if (row_sqlite(row)) {
        if (i == F_LEAF && row->merged && row->leaf_hash != NULL) {
            return 0;
        }
        sqlite3_value *v = row_value(row, i);
        return v == NULL || sqlite3_value_type(v) == SQLITE_NULL;
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
int
row_text(const Row *row, int i, const char **data, Py_ssize_t *size)
{
    if (row_sqlite(row)) {
        sqlite3_value *v = row_value(row, i);
        if (v == NULL || sqlite3_value_type(v) != SQLITE_TEXT) {
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
int
row_blob(const Row *row, int i, const char **data, Py_ssize_t *size)
{
    if (row_sqlite(row)) {
        if (i == F_LEAF && row->merged && row->leaf_hash != NULL) {
            *data = row->leaf_hash;
            *size = SHA256_DIGEST_LENGTH;
            return 1;
        }
        sqlite3_value *v = row_value(row, i);
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
    if (row_sqlite(row)) {
        sqlite3_value *v = row_value(row, i);
        if (v == NULL || sqlite3_value_type(v) != SQLITE_INTEGER) {
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
int
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

/* A scanned field's commitment message into `field`: its salt and its value's JCS bytes; -1
 * on a memory error. */
static int
field_message(const Walk *w, const Field *f, const char *salt, Buffer *field)
{
    field->size = 0;
    /* a string as the body holds it (not unescaped into w->decoded) is its own JCS form:
     * scan_string took no quote, backslash or control character in it */
    uintptr_t at = (uintptr_t)f->jcs, decoded = (uintptr_t)w->decoded;
    int raw = f->kind == 's' && (at < decoded || at >= decoded + sizeof w->decoded);
    if (buffer_add(field, salt, SALT_SIZE) < 0) {
        return -1;
    }
    if (raw) {
        return buffer_add(field, "\"", 1) < 0 ||
                       buffer_add(field, f->jcs, (size_t)f->jcs_size) < 0 ||
                       buffer_add(field, "\"", 1) < 0
                   ? -1
                   : 0;
    }
    return (f->kind == 's' ? add_jcs_utf8(field, f->jcs, f->jcs_size)
                           : buffer_add(field, f->jcs, (size_t)f->jcs_size)) < 0
               ? -1
               : 0;
}

/* The commitment of each scanned field: its one-block messages two at a time (sha256_pair),
 * the longer ones one by one; 0, or -1 on a memory error. */
static int
scanned_digests(const Walk *w, const char *salts, Buffer *field,
                unsigned char digests[][SHA256_DIGEST_LENGTH])
{
    unsigned char blocks[2][64];
    int waiting = -1; /* the field whose block waits for a second */
    for (int n = 0; n < w->count; n++) {
        if (field_message(w, &w->fields[n], salts + n * SALT_SIZE, field) < 0) {
            return -1;
        }
        if (field->size > 55) {
            buffer_sha256(field, digests[n]);
            continue;
        }
        sha256_pad(blocks[waiting < 0 ? 0 : 1], field->data, field->size);
        if (waiting < 0) {
            waiting = n;
            continue;
        }
        sha256_pair(blocks[0], blocks[1], digests[waiting], digests[n]);
        waiting = -1;
    }
    if (waiting >= 0) {
        unsigned char unused[SHA256_DIGEST_LENGTH];
        sha256_pair(blocks[0], blocks[0], digests[waiting], unused);
    }
    return 0;
}

/* The row's leaf from its content and packed salts equals its stored leaf: 1, 0, -1. */
int
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
    unsigned char digests[MAX_FIELDS][SHA256_DIGEST_LENGTH];
    int paired = sha256_pairs > 0 && w->count > 1;
    for (int n = 0; paired && n < w->count; n++) {
        paired = w->fields[n].value == NULL; /* every value scanned from the body */
    }
    if (paired && scanned_digests(w, salts, &field, digests) < 0) {
        goto done;
    }
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
        } else if (paired) {
            added = add_hex(&text, digests[n]) < 0 ? -1 : 1;
        } else {
            unsigned char digest[SHA256_DIGEST_LENGTH];
            if (field_message(w, f, salts + n * SALT_SIZE, &field) < 0) {
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
int
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
    if (row_sqlite(row)) {
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
