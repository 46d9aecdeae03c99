/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

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
int
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
int
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
int
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

int
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

/* One committed object's members at *p (past its "{"), each a field "name.key" of w (its path in
 * w's arena), for a stored body (scan_body) or a bundle's event line (bundle_scan_event):
 *
 * - a stored body's (bundle 0): an empty object is one; a null member is no field and no word;
 *   a repeated key is declined; each member's words are the full text's, and the members of
 *   actor, target and source fill their query columns;
 * - a bundle's (bundle 1): a key holding a dot, or a null, is declined; a repeated member
 *   repeats its path, which sort_fields declines.
 *
 * 1, 0 to decline, -1 on a memory error. Inlined with `bundle` a constant into each of its two
 * callers below: neither tests what the other needs. */
static inline __attribute__((always_inline)) int
members(Walk *w, const char **p, const char *end, const Slice *name, const int bundle)
{
    Slice keys[MAX_FIELDS];
    int count = 0;
    if (!bundle && *p < end && **p == '}') {
        (*p)++;
        return 1;
    }
    for (;;) {
        Slice sub, value;
        if (!scan_key(p, end, &sub) ||
            (bundle ? memchr(sub.data, '.', (size_t)sub.size) != NULL
                    : count == MAX_FIELDS || repeated(keys, count, &sub)) ||
            !scan_scalar(w, p, end, &value) || (bundle && value.kind == 'z')) {
            return 0;
        }
        if (!bundle) {
            keys[count++] = sub;
        }
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
            if (!bundle && add_slice_words(w, &value) < 0) {
                return -1;
            }
        }
        if (!bundle) {
            int column = member_column(name, &sub);
            if (column >= 0) {
                w->columns[column] = value;
            }
        }
        int next = object_next(p, end);
        if (next != 2) {
            return next;
        }
    }
}

/* A stored body's committed object (see members). */
static int
scan_members(Walk *w, const char **p, const char *end, const Slice *name)
{
    return members(w, p, end, name, 0);
}

/* A bundle event's committed object (see members): 1, or 0 to decline. */
int
bundle_members(Walk *w, const char **p, const char *end, const Slice *name)
{
    return members(w, p, end, name, 1);
}

/* Read a body of the common case: its fields (path, JCS bytes), its full-text words, the
 * values of its query columns and message. 1, 0 to decline, -1 on a memory error. */
int
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
