/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

/* -- bundle_events: a bundle's event lines, parsed and checked a batch per call ---------------
 *
 * The common line of a whole-tenant bundle is {"event": E, "salts": S, "redacted": {}}: E an
 * unredacted event whose every field is salted. This does for a batch of such lines what
 * model/evidence.py's plans and leaf() do for one event each (the same checks of the event's
 * shape, then leaf()'s own), so the Python loop runs only for the lines it declines. */

FL_DOC(bundle_chunk_doc,
"bundle_chunk(chunk, seq, limit, tenant_id, tenant_json, loads, /)\n--\n\n"
"bundle_events() over the lines of chunk (bytes of whole lines, each ending in \\n) with no bytes\n"
"object per line: (items, declined), items[n] the leaf of the line at seq + n, or for each n\n"
"in declined (ascending) that line's bytes; None if chunk has more than limit lines.");
FL_DOC(bundle_events_doc,
"bundle_events(lines, seq, tenant_id, tenant_json, loads, /)\n--\n\n"
"The leaf hashes of a bundle's lines, the n-th at seq + n, each None unless loads(line) is\n"
"{\"event\": E, \"salts\": S, \"redacted\": {}} with E an unredacted event of tenant_id at that\n"
"seq, every field of it salted in S, whose leaf (as leaf() writes it) is E's hash.");

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
            if (!bundle_members(w, p, end, &key)) {
                return 0;
            }
        } else if (!scan_scalar(w, p, end, &value) || value.kind == 'z' ||
                   !add_slice_field(w, key.data, key.size, &value)) {
            return 0;
        }
        int next = object_next(p, end);
        if (next != 2) {
            return next;
        }
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
        int next = object_next(p, end);
        if (next != 2) {
            return next;
        }
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

PyObject *
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
PyObject *
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
