/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

/* -- Tally: the rollup recount (service.audit._rollups.RollupTally) kept in C ----------------
 *
 * RollupTally counts, per hour, each combination of a group's columns (one group of the few-
 * valued dimensions, one per many-valued one); a day is the sum of its hours. Here each row adds
 * one to one key per group, a key being the group, the hour (ts[:13]) and the group's values,
 * as bytes in a hash table; expected() spreads each key over its dimensions, hour and day, as
 * RollupTally.expected does, and matches() compares that with the stored rollups in one go.
 * Rows with a value that is neither a str nor None come back from add() for the Python tally.
 */

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

/* Move the table into `capacity` slots (a power of two, more than it holds): 0, or -1 with
 * MemoryError. */
static int
table_resize(TallyTable *t, size_t capacity)
{
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

static int
table_grow(TallyTable *t)
{
    return table_resize(t, t->capacity ? 2 * t->capacity : 4096);
}

/* Make room for `keys` keys in all at once (a table filled by doubling allocates, faults in
 * and rehashes twice the memory it ends with): 0, or -1 with MemoryError. */
static int
table_reserve(TallyTable *t, size_t keys)
{
    size_t capacity = t->capacity ? t->capacity : 4096;
    while (2 * (keys + 1) > capacity) {
        capacity *= 2;
    }
    return capacity == t->capacity ? 0 : table_resize(t, capacity);
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

static int key_grow(Key *k, const void *bytes, size_t size);

/* Append to a key: 0, or -1 with MemoryError. Inline, the pieces being a few bytes each. */
static inline int
key_add(Key *k, const void *bytes, size_t size)
{
    if (__builtin_expect(k->size + size <= k->capacity, 1)) {
        copy_short(k->data + k->size, bytes, size);
        k->size += size;
        return 0;
    }
    return key_grow(k, bytes, size);
}

static int __attribute__((noinline))
key_grow(Key *k, const void *bytes, size_t size)
{
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
int
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
int
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

/* Whether group g's hour keys are its dimension's hour rollups one for one (a group of one
 * many-valued dimension): then `table` answers for them (tally_spread's `direct`). */
static inline int
one_for_one(const Tally *self, int g)
{
    return g > 0 && self->group_size[g] == 1;
}

/* The rollups the counts make, (dimension, period, value) -> n, as RollupTally.expected: into
 * `out` (a table keyed by the dimension's index, period and value). With `direct` (not NULL),
 * the hour rollups of a one_for_one group whose hour is longer than a day (more than 10 code
 * points: never a day's period too) are left out of `out`: each is its key's count in `table`
 * (group, hour, value), and *direct is how many of them there are. */
static int
tally_spread(Tally *self, TallyTable *out, size_t *direct)
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
    /* at most: the hour total of each first group's key, an hour and a day per value */
    size_t most = 0;
    for (size_t i = 0; i < capacity; i++) {
        const TallySlot *s = &self->table.slots[i];
        if (s->count != 0) {
            int g = ((const unsigned char *)self->table.arena)[s->offset];
            most += (g == 0) + (direct && one_for_one(self, g) ? 1 : 2) * (size_t)self->group_size[g];
        }
    }
    if (table_reserve(out, out->used + most) < 0) {
        return -1;
    }
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
            int first = 0;
            if (direct != NULL && one_for_one(self, g) && day_size < (Py_ssize_t)hour_size) {
                (*direct)++;
                first = 1; /* the hour's rollup is the table's count: the day's only */
            }
            for (int period = first; !failed && period < 2; period++) {
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
    if (tally_spread(self, &out, NULL) < 0) {
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
    if (tally_spread(self, &out, NULL) < 0) {
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

enum { AHEAD = 8 };

/* A stored rollup row's key, looked up AHEAD rows later (match_row). */
typedef struct {
    Key key;
    uint64_t hash;
    long long n;
    const TallyTable *in; /* `out`, or the counts themselves (tally_spread's direct) */
} Pending;

/* tally_matches_statement's comparison, row by row (match_row). */
struct TallyMatch {
    Tally *self;
    /* the dimensions' names as UTF-8, by index (d = 0: the hour total) */
    const char *name[1 + TALLY_GROUPS * TALLY_COLUMNS];
    Py_ssize_t name_size[1 + TALLY_GROUPS * TALLY_COLUMNS];
    int dims;
    TallyTable out;
    Key k;
    Pending pending[AHEAD];
    size_t rows;
    int equal; /* 1 so far; 0 a difference; -1 with an exception */
};

/* One stored row (dimension, period, value, n) into the comparison. */
static void
match_row(TallyMatch *m, sqlite3_value *const column[4])
{
    if (m->equal != 1) {
        return;
    }
    Tally *self = m->self;
    if (sqlite3_value_type(column[0]) != SQLITE_TEXT ||
        sqlite3_value_type(column[1]) != SQLITE_TEXT ||
        sqlite3_value_type(column[2]) != SQLITE_TEXT ||
        sqlite3_value_type(column[3]) != SQLITE_INTEGER) {
        m->equal = 0;
        return;
    }
    /* text read as a blob, which never converts (as row_text) */
    const char *text[3];
    for (int i = 0; i < 3; i++) {
        text[i] = (const char *)sqlite3_value_blob(column[i]);
        if (text[i] == NULL) {
            text[i] = ""; /* the empty string */
        }
    }
    const char *dim = text[0];
    Py_ssize_t dim_size = sqlite3_value_bytes(column[0]);
    int found = -1;
    for (int d = 0; d < m->dims && found < 0; d++) {
        if (m->name[d] != NULL && m->name_size[d] == dim_size &&
            memcmp(m->name[d], dim, (size_t)dim_size) == 0) {
            found = d;
        }
    }
    if (found < 0) {
        m->equal = 0;
        return;
    }
    const char *period = text[1], *value = text[2];
    Py_ssize_t period_size = sqlite3_value_bytes(column[1]);
    Py_ssize_t value_size = sqlite3_value_bytes(column[2]);
    unsigned char d = (unsigned char)found;
    int g = found > 0 ? (found - 1) / TALLY_COLUMNS : 0;
    const TallyTable *in = &m->out;
    if (found > 0 && one_for_one(self, g) && utf8_prefix(period, period_size, 10) < period_size) {
        in = &self->table; /* an hour's rollup: the count of (group, hour, value) */
        d = (unsigned char)g;
    }
    Key *k = &m->k;
    k->size = 0;
    if (key_add(k, &d, 1) < 0 || key_text(k, period, period_size) < 0 ||
        key_text(k, value, value_size) < 0) {
        m->equal = -1;
        return;
    }
    long long n = sqlite3_value_int64(column[3]);
    if (n == 0) {
        m->equal = 0;
        return;
    }
    /* looked up AHEAD rows later, its slot prefetched meanwhile (the stored rows come in key
     * order, the table's slots in hash order: each lookup is a cache miss) */
    Pending *next = &m->pending[m->rows % AHEAD];
    if (m->rows >= AHEAD &&
        table_get_hashed(next->in, next->key.data, next->key.size, next->hash) != next->n) {
        m->equal = 0;
        return;
    }
    next->key.size = 0;
    if (key_add(&next->key, k->data, k->size) < 0) {
        m->equal = -1;
        return;
    }
    next->n = n;
    next->in = in;
    next->hash = key_hash(k->data, k->size);
    if (in->capacity) {
        __builtin_prefetch(&in->slots[next->hash & (in->capacity - 1)]);
    }
    m->rows++;
}

/* The rollups query's aggregate (trailkeep_rollups(dim, period, value, n), SQLiteRows'):
 * each stored row into the comparison in progress, inside SQLite's loop. Returns 1 while the
 * rows match so far (or no comparison is in progress), else 0 or -1 (see TallyMatch.equal). */
int
tally_match_values(TallyMatch *m, int argc, sqlite3_value **argv)
{
    if (m == NULL) {
        return 1; /* not rollups_match()'s statement */
    }
    if (argc != 4) {
        m->equal = m->equal == 1 ? 0 : m->equal;
        return m->equal;
    }
    match_row(m, argv);
    return m->equal;
}

/* Whether the rows a statement gives, (dimension, period, value, n) with n != 0, are exactly
 * expected(): matches() without a Python object per stored row. The statement gives the rows
 * as its own (4 columns), or feeds them to trailkeep_rollups (1 column: an aggregate, each row
 * compared inside SQLite's loop; *feeding points at the comparison meanwhile). It is stepped
 * to its end (and reset); 1, 0, or -1 with an exception (a SQLite error: SQLiteError). A row
 * whose columns are not text, text, text, integer is a difference. */
int
tally_matches_statement(Tally *self, sqlite3_stmt *q, sqlite3 *db, TallyMatch **feeding)
{
    TallyMatch *m = PyMem_Calloc(1, sizeof *m);
    if (m == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    m->self = self;
    m->equal = 1;
    for (int d = 0; d <= TALLY_GROUPS * TALLY_COLUMNS; d++) {
        int g = (d - 1) / TALLY_COLUMNS, c = (d - 1) % TALLY_COLUMNS;
        if (d > 0 && (g >= self->groups || c >= self->group_size[g])) {
            continue;
        }
        m->name[d] = PyUnicode_AsUTF8AndSize(tally_dimension(self, d), &m->name_size[d]);
        if (m->name[d] == NULL) {
            PyMem_Free(m);
            return -1;
        }
        m->dims = d + 1;
    }
    size_t direct = 0;
    if (tally_spread(self, &m->out, &direct) < 0) {
        table_free(&m->out);
        PyMem_Free(m);
        return -1;
    }
    m->k = (Key){.data = m->k.local, .size = 0, .capacity = TALLY_KEY};
    for (int r = 0; r < AHEAD; r++) {
        m->pending[r].key = (Key){.data = m->pending[r].key.local, .size = 0, .capacity = TALLY_KEY};
    }
    int rc, own = sqlite3_column_count(q) == 4;
    *feeding = m;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW && m->equal == 1) {
        if (own) {
            sqlite3_value *column[4];
            for (int i = 0; i < 4; i++) {
                column[i] = sqlite3_column_value(q, i);
            }
            match_row(m, column);
        }
    }
    *feeding = NULL;
    int equal = m->equal;
    for (size_t r = m->rows > AHEAD ? m->rows - AHEAD : 0; equal == 1 && r < m->rows; r++) {
        const Pending *left = &m->pending[r % AHEAD];
        equal = table_get_hashed(left->in, left->key.data, left->key.size, left->hash) ==
                left->n;
    }
    for (int r = 0; r < AHEAD; r++) {
        if (m->pending[r].key.data != m->pending[r].key.local) {
            PyMem_Free(m->pending[r].key.data);
        }
    }
    if (equal == -1 && !PyErr_Occurred()) {
        PyErr_NoMemory();
    }
    if (equal == 1 && rc != SQLITE_DONE && rc != SQLITE_ROW) {
        sqlite_failed(db, "SQLite read failed");
        equal = -1;
    } /* else a difference may have ended the aggregate early, with an error of its own */
    sqlite3_reset(q);
    if (m->k.data != m->k.local) {
        PyMem_Free(m->k.data);
    }
    /* each stored row found with its count, and as many rows as expected: the same mapping
     * (the primary key makes the stored keys distinct) */
    if (equal == 1 && m->rows != m->out.used + direct) {
        equal = 0;
    }
    table_free(&m->out);
    PyMem_Free(m);
    return equal;
}

static PyMethodDef tally_methods[] = {
    {"add", (PyCFunction)tally_add, METH_O, tally_add_doc},
    {"expected", (PyCFunction)tally_expected, METH_NOARGS, tally_expected_doc},
    {"matches", (PyCFunction)tally_matches, METH_O, tally_matches_doc},
    {NULL, NULL, 0, NULL},
};

PyTypeObject TallyType = {
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
