/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

/* The decimal digits of n into out (at least 21 bytes); their count. snprintf's "%lld", without
 * its cost per call. */
int
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

/* Decode a salt: 1 if `text` is the canonical base64 of 16 bytes, else 0. */
int
decode_salt(PyObject *text, unsigned char out[SALT_SIZE])
{
    if (!PyUnicode_CheckExact(text) || !PyUnicode_IS_COMPACT_ASCII(text)) {
        return 0;
    }
    return decode_salt_bytes(PyUnicode_1BYTE_DATA(text), PyUnicode_GET_LENGTH(text), out);
}

/* decode_salt of the bytes of a salt's text. */
int
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
/* SHA-256 of a buffer. OpenSSL 3's one-shot SHA256() fetches the algorithm from a provider on
 * every call, which costs more than hashing a field: the context functions do not. */
void
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

/* buffer_reserve's rare part: the buffer moves to (a larger part of) the heap. */
int __attribute__((noinline))
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

/* Append a SHA-256 digest as 64 lowercase hex characters; -1 on a memory error. */
int
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
int
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
