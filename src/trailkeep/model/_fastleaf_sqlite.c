/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"
#include <structmember.h>

Walk *
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

void
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
    PyObject *hash = row_sqlite(row) ? PyBytes_FromStringAndSize(leaf, size)
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

FL_DOC(check_rows_doc,
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

PyObject *
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
        Row row = {NULL, tuple, 0, NULL, NULL, NULL};
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

/* hashes()'s run of a level: trailkeep_hashes(idx, hash), the aggregate its queries call,
 * copies each hash of [start, end) into `out` in order; a row out of that order, past it, or
 * not of 32 bytes makes it not `whole` (hashes() then answers b""). */
typedef struct {
    unsigned char *out;
    long long start, next, end;
    long long fed; /* rows the aggregate was given */
    int whole;
} HashRun;

typedef struct {
    PyObject_HEAD
    sqlite3 *db;
    sqlite3_stmt *stmt;
    sqlite3_stmt *leaves; /* or NULL: the leaves, stepped beside stmt (see rows_init) */
    sqlite3_stmt *hashes[2]; /* or NULL: hashes() queries */
    sqlite3_stmt *rollups;   /* or NULL: rollups_match()'s query */
    sqlite3_stmt *by_rowid;  /* or NULL: the rows query in row-id order (see step_rows) */
    sqlite3_stmt *bounds;    /* with by_rowid: the row id of a (tenant, seq) */
    long long rowid_rows;    /* rows read in row-id order so far (rowid_rows) */
    HashRun run;             /* hashes(): the level being read */
    struct Feed *feed;       /* step_by_rowid: the chunk its aggregate feeds (else NULL) */
    TallyMatch *match;       /* rollups_match(): the comparison its aggregate feeds */
    /* check(): the chunk's leaves [leaves_start, leaves_end), read at once by the nodes query
     * (as hashes() reads a level) where they are all there; else leaves_end == leaves_start
     * and the leaves statement is stepped beside the rows */
    unsigned char *leaf_buffer;
    size_t leaf_capacity;
    long long leaves_start, leaves_end;
} SQLiteRows;

/* trailkeep_hashes(idx, hash), an aggregate: one call per row inside SQLite's loop instead of
 * a sqlite3_step() round trip per row (the tree's 2M rows of a 1M log: 0.31 -> 0.15-0.22 s per
 * million rows, a C loop over the same range). */
static void
hashes_step(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    HashRun *run = sqlite3_user_data(context);
    run->fed++;
    if (!run->whole) {
        return;
    }
    if (argc != 2 || run->next >= run->end || sqlite3_value_type(argv[0]) != SQLITE_INTEGER ||
        sqlite3_value_int64(argv[0]) != run->next || sqlite3_value_type(argv[1]) != SQLITE_BLOB ||
        sqlite3_value_bytes(argv[1]) != SHA256_DIGEST_LENGTH) {
        run->whole = 0;
        return;
    }
    memcpy(run->out + (run->next - run->start) * SHA256_DIGEST_LENGTH, sqlite3_value_blob(argv[1]),
           SHA256_DIGEST_LENGTH);
    run->next++;
}

static void
hashes_final(sqlite3_context *context)
{
    HashRun *run = sqlite3_user_data(context);
    sqlite3_result_int64(context, run->fed);
}

PyObject *
sqlite_failed(sqlite3 *db, const char *doing)
{
    PyErr_Format(SQLiteError, "%s: %s", doing, db ? sqlite3_errmsg(db) : "out of memory");
    return NULL;
}

static void feed_step(sqlite3_context *context, int argc, sqlite3_value **argv);
static void feed_final(sqlite3_context *context);

/* trailkeep_rollups(dim, period, value, n), the rollups query's aggregate: each stored row
 * compared inside SQLite's loop (tally_matches_statement). */
static void
rollups_step(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    SQLiteRows *self = sqlite3_user_data(context);
    if (tally_match_values(self->match, argc, argv) != 1) {
        /* a difference (or an error, with its exception): the rest need not be read */
        sqlite3_result_error(context, "trailkeep_rollups: the comparison is decided", -1);
    }
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
    sqlite3_stmt **owned[] = {&self->rollups, &self->by_rowid, &self->bounds};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) {
        if (*owned[i] != NULL) {
            sqlite3_finalize(*owned[i]);
            *owned[i] = NULL;
        }
    }
    if (self->db != NULL) {
        sqlite3_close_v2(self->db);
        self->db = NULL;
    }
    PyMem_Free(self->leaf_buffer);
    self->leaf_buffer = NULL;
    self->leaf_capacity = 0;
    self->leaves_start = self->leaves_end = 0;
}

static int
rows_init(SQLiteRows *self, PyObject *args, PyObject *kwargs)
{
    const char *path, *sql, *leaves = NULL, *hashes[2] = {NULL, NULL}, *rollups = NULL,
               *by_rowid = NULL, *bounds = NULL;
    static char *names[] = {"path",    "sql",     "leaves",   "nodes", "pangea",
                            "rollups", "by_rowid", "bounds",  NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "ss|zzzzzz:SQLiteRows", names, &path, &sql,
                                     &leaves, &hashes[0], &hashes[1], &rollups, &by_rowid,
                                     &bounds)) {
        return -1;
    }
    if ((by_rowid == NULL) != (bounds == NULL)) {
        PyErr_SetString(PyExc_ValueError, "SQLiteRows takes both by_rowid and bounds, or neither");
        return -1;
    }
    rows_close(self);
    self->rowid_rows = 0;
    int rc = sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(self->db, 10000);
        /* pages read (pread) into SQLite's small page cache, not mapped: a scan of the whole
         * file through a 2 GB mapping cost more CPU (a fault per 16 pages, the 4 KB pages'
         * TLB misses in OP_Column's copies, the teardown at close) than copying each page
         * once, measured on the 1M seed (docs/integrity.md) */
        rc = sqlite3_exec(self->db, "PRAGMA query_only=ON; PRAGMA mmap_size=0", NULL, NULL,
                          NULL);
    }
    if (rc == SQLITE_OK) {
        self->run = (HashRun){NULL, 0, 0, 0, 0, 0};
        rc = sqlite3_create_function_v2(self->db, "trailkeep_hashes", 2,
                                        SQLITE_UTF8 | SQLITE_DIRECTONLY, &self->run, NULL,
                                        hashes_step, hashes_final, NULL);
    }
    if (rc == SQLITE_OK) {
        self->match = NULL;
        rc = sqlite3_create_function_v2(self->db, "trailkeep_rollups", 4,
                                        SQLITE_UTF8 | SQLITE_DIRECTONLY, self, NULL, rollups_step,
                                        feed_final, NULL);
    }
    if (rc == SQLITE_OK) {
        self->feed = NULL;
        rc = sqlite3_create_function_v2(self->db, "trailkeep_rows", F_COUNT,
                                        SQLITE_UTF8 | SQLITE_DIRECTONLY, self, NULL, feed_step,
                                        feed_final, NULL);
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
    if (rc == SQLITE_OK && by_rowid != NULL) {
        rc = sqlite3_prepare_v2(self->db, by_rowid, -1, &self->by_rowid, NULL);
    }
    if (rc == SQLITE_OK && bounds != NULL) {
        rc = sqlite3_prepare_v2(self->db, bounds, -1, &self->bounds, NULL);
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
        (self->rollups != NULL && ((sqlite3_column_count(self->rollups) != 4 &&
                                    sqlite3_column_count(self->rollups) != 1) ||
                                   sqlite3_bind_parameter_count(self->rollups) != 1)) ||
        (self->by_rowid != NULL && (sqlite3_column_count(self->by_rowid) != 1 ||
                                    sqlite3_bind_parameter_count(self->by_rowid) != 3)) ||
        (self->bounds != NULL && (sqlite3_column_count(self->bounds) != 1 ||
                                  sqlite3_bind_parameter_count(self->bounds) != 2))) {
        rows_close(self);
        PyErr_Format(PyExc_ValueError,
                     "SQLiteRows takes a query of 3 parameters and %d columns, by_rowid of 3"
                     " parameters and 1 column (trailkeep_rows() of those columns), leaves of 3"
                     " parameters and 2 columns (seq, hash), nodes and pangea of 4 parameters and"
                     " 1 column (trailkeep_hashes(idx, hash)), rollups of 1 parameter and 4"
                     " columns or 1 (trailkeep_rollups() of them), bounds of 2 parameters and 1"
                     " column", F_COUNT);
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

/* A row read from SQLite as a tuple, as the sqlite3 module would give it. */
static PyObject *
statement_as_tuple(const Row *row)
{
    PyObject *tuple = PyTuple_New(F_COUNT);
    for (int i = 0; tuple != NULL && i < F_COUNT; i++) {
        PyObject *value;
        sqlite3_value *v = row_value(row, i);
        if (i == F_LEAF && row->merged && row->leaf_hash != NULL) {
            value = PyBytes_FromStringAndSize(row->leaf_hash, SHA256_DIGEST_LENGTH);
            if (value == NULL) {
                Py_CLEAR(tuple);
                break;
            }
            PyTuple_SET_ITEM(tuple, i, value);
            continue;
        }
        switch (v == NULL ? SQLITE_NULL : sqlite3_value_type(v)) {
        case SQLITE_INTEGER: value = PyLong_FromLongLong(sqlite3_value_int64(v)); break;
        case SQLITE_FLOAT: value = PyFloat_FromDouble(sqlite3_value_double(v)); break;
        case SQLITE_TEXT: {
            const char *text = (const char *)sqlite3_value_text(v);
            value = text == NULL ? PyErr_NoMemory()
                                 : PyUnicode_DecodeUTF8(text, sqlite3_value_bytes(v), NULL);
            break;
        }
        case SQLITE_BLOB: {
            const void *data = sqlite3_value_blob(v);
            value = PyBytes_FromStringAndSize(data ? data : "", sqlite3_value_bytes(v));
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

/* Bind (tenant, a, b) to a statement of three parameters. */
static int
bind_range(sqlite3_stmt *q, const char *tenant, Py_ssize_t tenant_size, long long a, long long b)
{
    int rc = sqlite3_bind_text(q, 1, tenant, (int)tenant_size, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 2, a);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 3, b);
    }
    return rc;
}

/* The row id of the tenant's row at `seq` (bounds): SQLITE_ROW with *out, SQLITE_DONE if there
 * is none, or an error code. */
static int
row_id_of(SQLiteRows *self, const char *tenant, Py_ssize_t tenant_size, long long seq,
          long long *out)
{
    sqlite3_stmt *q = self->bounds;
    sqlite3_reset(q);
    int rc = sqlite3_bind_text(q, 1, tenant, (int)tenant_size, SQLITE_TRANSIENT);
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(q, 2, seq);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(q);
    }
    if (rc == SQLITE_ROW) {
        if (sqlite3_column_type(q, 0) == SQLITE_INTEGER) {
            *out = sqlite3_column_int64(q, 0);
        } else {
            rc = SQLITE_DONE;
        }
    }
    sqlite3_reset(q);
    return rc;
}

/* Read the hashes of [start, end) at `level` by the hashes query q (trailkeep_hashes) into
 * `out`: 1 if they are each index of the range once, in order, of 32 bytes; 0 if not (`out`
 * then holds no answer); -1 on a SQLite error (q reset either way). */
static int
read_level(SQLiteRows *self, sqlite3_stmt *q, const char *tenant, Py_ssize_t tenant_size,
           long long level, long long start, long long end, unsigned char *out)
{
    self->run = (HashRun){out, start, start, end, 0, 1};
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
    /* the aggregate's one row: how many rows it was given (anything else: not its query) */
    int rows = 0;
    long long fed = -1;
    while (rc == SQLITE_OK || rc == SQLITE_ROW) {
        rc = sqlite3_step(q);
        if (rc != SQLITE_ROW) {
            break;
        }
        sqlite3_value *v = sqlite3_column_value(q, 0);
        fed = sqlite3_value_type(v) == SQLITE_INTEGER ? sqlite3_value_int64(v) : -1;
        rows++;
    }
    sqlite3_reset(q);
    HashRun run = self->run;
    self->run = (HashRun){NULL, 0, 0, 0, 0, 0};
    if (rc != SQLITE_DONE) {
        return -1;
    }
    return rows == 1 && fed == run.fed && run.whole && run.next == end;
}

/* Check one row read from SQLite into the chunk, its leaf merged from the leaves statement
 * (stepped in seq order beside the rows, *lrc its last step; a merge, not a lookup per row).
 * With `next` (the row-id order), stop before a row whose seq is not *next, counting *next up
 * per row taken. SQLITE_OK taken; SQLITE_ROW to stop before it; -1 with an exception set; or
 * the leaves' error code. */
static int
take_row(SQLiteRows *self, Chunk *c, Walk *w, PyObject *const *args, Row *row, int *lrc,
         long long *next)
{
    sqlite3_stmt *ls = self->leaves;
    sqlite3_value *position = row_value(row, F_SEQ);
    int has_seq = sqlite3_value_type(position) == SQLITE_INTEGER;
    sqlite3_int64 seq = has_seq ? sqlite3_value_int64(position) : 0;
    if (next != NULL) {
        if (!has_seq || seq != *next || seq >= c->end) {
            return SQLITE_ROW;
        }
        (*next)++;
    }
    if (ls != NULL && self->leaves_end > self->leaves_start) {
        /* the chunk's leaves, read at once: the position's own */
        row->leaf = NULL;
        row->leaf_hash = has_seq && seq >= self->leaves_start && seq < self->leaves_end
                             ? (const char *)self->leaf_buffer +
                                   (seq - self->leaves_start) * SHA256_DIGEST_LENGTH
                             : NULL;
    } else if (ls != NULL) {
        row->leaf = NULL;
        if (has_seq) {
            while (*lrc == SQLITE_ROW && sqlite3_column_int64(ls, 0) < seq) {
                *lrc = sqlite3_step(ls);
            }
            if (*lrc == SQLITE_ROW && sqlite3_column_int64(ls, 0) == seq) {
                row->leaf = ls;
            }
        }
        if (*lrc != SQLITE_ROW && *lrc != SQLITE_DONE) {
            return *lrc;
        }
    }
    return chunk_add(c, row, w, args[3], args[4], statement_as_tuple) < 0 ? -1 : SQLITE_OK;
}

/* Step the bound rows query `q` (in seq order) and check each row into the chunk (take_row).
 * Returns -1 with an exception set; else q's last step's code, or the leaves' if that
 * failed. */
static int
step_rows(SQLiteRows *self, Chunk *c, Walk *w, PyObject *const *args, sqlite3_stmt *q,
          int *lrc)
{
    Row row = {q, NULL, self->leaves != NULL, NULL, NULL, NULL};
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int taken = take_row(self, c, w, args, &row, lrc, NULL);
        if (taken != SQLITE_OK) {
            return taken;
        }
    }
    return rc;
}

/* The chunk that by_rowid's aggregate, trailkeep_rows(columns...), feeds: each row it is
 * given is taken as step_rows takes a stepped one, inside SQLite's loop (no sqlite3_step()
 * round trip and no sqlite3_column_value() call per column: the 1M rows' query in a C loop
 * 2.0-2.8 -> 1.6-2.0 s). An aggregate's rows come in no order SQL promises; these come in the
 * row-id range's order, and any other is taken only as far as it gives the next positions. */
typedef struct Feed {
    Chunk *c;
    Walk *w;
    PyObject *const *args;
    int *lrc;
    long long *next;
    int taken; /* SQLITE_OK while rows are taken; else take_row's answer that stopped them */
} Feed;

static void
feed_step(sqlite3_context *context, int argc, sqlite3_value **argv)
{
    SQLiteRows *self = sqlite3_user_data(context);
    Feed *f = self->feed;
    if (f == NULL || f->taken != SQLITE_OK) {
        return; /* not check()'s statement, or stopped: the rest are read by seq */
    }
    if (argc != F_COUNT) {
        f->taken = SQLITE_MISUSE;
        return;
    }
    Row row = {NULL, NULL, self->leaves != NULL, NULL, argv, NULL};
    f->taken = take_row(self, f->c, f->w, f->args, &row, f->lrc, f->next);
}

static void
feed_final(sqlite3_context *context)
{
    sqlite3_result_null(context);
}

/* Read the rows of [start, end) in row-id order (by_rowid), as far as they are the positions
 * start, start + 1, ... in that order: *next is then the first position not read. Row ids are
 * handed out in insertion order, which is seq order within a tenant, so a chunk's rows are
 * usually one short range of the table, read page after page (and the full-text rows joined by
 * row id likewise) instead of through the seq index. Taken only where the range holds few other
 * rows (at most one per row of the chunk: other tenants' rows interleaved). That each position
 * has one row at most is the unique index on (tenant_id, seq), which the caller checked: so a
 * run of consecutive positions is all of their rows, and the positions from the first row out of
 * order on (a row moved, deleted, or another's) are read by seq, the exact way. Returns as
 * step_rows (SQLITE_OK: the range was not taken). */
static int
step_by_rowid(SQLiteRows *self, Chunk *c, Walk *w, PyObject *const *args, const char *tenant,
              Py_ssize_t tenant_size, int *lrc, long long *next)
{
    long long lo, hi, width = c->end - c->start;
    int rc = row_id_of(self, tenant, tenant_size, c->start, &lo);
    if (rc == SQLITE_ROW) {
        rc = row_id_of(self, tenant, tenant_size, c->end - 1, &hi);
    }
    if (rc == SQLITE_DONE) {
        return SQLITE_OK; /* a position at either end has no row: by seq */
    }
    if (rc != SQLITE_ROW) {
        return rc;
    }
    if (hi < lo || hi - lo >= 2 * width) {
        return SQLITE_OK;
    }
    sqlite3_stmt *q = self->by_rowid;
    sqlite3_reset(q);
    rc = bind_range(q, tenant, tenant_size, lo, hi);
    Feed feed = {c, w, args, lrc, next, SQLITE_OK};
    self->feed = &feed;
    if (rc == SQLITE_OK) {
        do {
            rc = sqlite3_step(q);
        } while (rc == SQLITE_ROW);
    }
    self->feed = NULL;
    sqlite3_reset(q);
    if (feed.taken != SQLITE_OK && feed.taken != SQLITE_ROW) {
        return feed.taken; /* -1 with an exception, or the leaves' error */
    }
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

PyDoc_STRVAR(rows_check_doc,
"check(tenant_id, start, end, tenant_json, loads, watch, tally, /)\n--\n\n"
"Run the query for (tenant_id, start, end), one read transaction, and check its rows as\n"
"check_rows() does; the rows not vouched for come back as the sqlite3 module gives them.\n"
"With by_rowid and bounds, the chunk's rows are read in row-id order where that gives them.");

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
    /* one read transaction: every statement reads the same snapshot */
    int rc = sqlite3_exec(self->db, "BEGIN", NULL, NULL, NULL);
    int began = rc == SQLITE_OK;
    /* the chunk's leaves at once (an aggregate, as hashes() reads a level) where they are all
     * there, each of 32 bytes; else stepped beside the rows, merged by seq */
    self->leaves_start = self->leaves_end = start;
    if (rc == SQLITE_OK && ls != NULL && self->hashes[0] != NULL && end > start) {
        size_t need = (size_t)(end - start) * SHA256_DIGEST_LENGTH;
        if (need > self->leaf_capacity) {
            unsigned char *grown = PyMem_Realloc(self->leaf_buffer, need);
            if (grown == NULL) {
                PyErr_NoMemory();
                goto failed;
            }
            self->leaf_buffer = grown;
            self->leaf_capacity = need;
        }
        int whole = read_level(self, self->hashes[0], tenant, tenant_size, 0, start, end,
                               self->leaf_buffer);
        if (whole < 0) {
            sqlite_failed(self->db, "SQLite read failed");
            goto failed;
        }
        self->leaves_end = whole ? end : start;
    }
    if (rc == SQLITE_OK && ls != NULL && self->leaves_end == self->leaves_start) {
        rc = bind_range(ls, tenant, tenant_size, start, end);
    }
    int lrc = ls != NULL && rc == SQLITE_OK && self->leaves_end == self->leaves_start
                  ? sqlite3_step(ls)
                  : SQLITE_DONE;
    long long next = start;
    if (rc == SQLITE_OK && self->by_rowid != NULL && end > start) {
        rc = step_by_rowid(self, &c, w, args, tenant, tenant_size, &lrc, &next);
        if (rc < 0) {
            goto failed;
        }
        self->rowid_rows += next - start;
    }
    if (rc == SQLITE_OK && next < end) {
        rc = bind_range(s, tenant, tenant_size, next, end);
        if (rc == SQLITE_OK) {
            rc = step_rows(self, &c, w, args, s, &lrc);
        }
        if (rc < 0) {
            goto failed;
        }
    } else if (rc == SQLITE_OK) {
        rc = SQLITE_DONE;
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
"Run the `nodes` (tree 0) or `pangea` (tree 1) query for (tenant_id, level, start, end), an\n"
"aggregate of the rows of that range: SELECT trailkeep_hashes(idx, hash) FROM ... (the\n"
"function is this connection's). The hashes concatenated if the rows are the indexes start,\n"
"start + 1, ..., end - 1 in that order, each hash of 32 bytes; else b\"\".");

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
    int whole = read_level(self, q, tenant, tenant_size, level, start, end,
                           (unsigned char *)PyBytes_AS_STRING(out));
    if (whole <= 0) {
        Py_DECREF(out);
        return whole < 0 ? sqlite_failed(self->db, "SQLite read failed")
                         : PyBytes_FromStringAndSize("", 0);
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
    int equal = tally_matches_statement((Tally *)args[1], self->rollups, self->db, &self->match);
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

static PyMemberDef rows_members[] = {
    {"rowid_rows", T_LONGLONG, offsetof(SQLiteRows, rowid_rows), READONLY,
     "Rows check() has read in row-id order (by_rowid) so far; the rest were read by seq."},
    {NULL, 0, 0, 0, NULL},
};

PyTypeObject SQLiteRowsType = {
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
    .tp_members = rows_members,
};
