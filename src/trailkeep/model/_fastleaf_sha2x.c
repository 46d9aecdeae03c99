/* trailkeep.model._fastleaf: see _fastleaf.c. Two one-block SHA-256 digests at once.
 *
 * An event's commitments are a score of short, independent messages (a salt and a value: one
 * block each). With the CPU's SHA extensions one block's 64 rounds are a chain of 32
 * sha256rnds2, each waiting for the last, so a single message (OpenSSL's SHA256_Transform)
 * leaves the unit idle most of the time; two messages compressed in lockstep fill it. Used
 * only where the CPU has them (cpuid, at import); the answer is SHA-256's, which the tests
 * check against hashlib's for messages of every length up to a block.
 */
#include "_fastleaf.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
};

static const uint32_t IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

#define SHA_TARGET __attribute__((target("sha,sse4.1,ssse3")))

/* The next four words of the message schedule from the last sixteen (w[i & 3] is the oldest). */
SHA_TARGET static inline __m128i
schedule(const __m128i w[4], int i)
{
    __m128i x = _mm_sha256msg1_epu32(w[i & 3], w[(i - 3) & 3]);
    x = _mm_add_epi32(x, _mm_alignr_epi8(w[(i - 1) & 3], w[(i - 2) & 3], 4));
    return _mm_sha256msg2_epu32(x, w[(i - 1) & 3]);
}

SHA_TARGET static void
compress_pair(const unsigned char *const block[2], unsigned char *const digest[2])
{
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    /* the initial state as the instructions take it: ABEF and CDGH */
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV[0]), 0xB1);
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&IV[4]), 0x1B);
    const __m128i abef0 = _mm_alignr_epi8(dcba, hgfe, 8);
    const __m128i cdgh0 = _mm_blend_epi16(hgfe, dcba, 0xF0);
    __m128i abef[2] = {abef0, abef0}, cdgh[2] = {cdgh0, cdgh0};
    __m128i w[2][4];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) {
        const __m128i k = _mm_loadu_si128((const __m128i *)&K256[4 * i]);
        __m128i m[2];
        for (int s = 0; s < 2; s++) {
            w[s][i & 3] = i < 4 ? _mm_shuffle_epi8(
                                      _mm_loadu_si128((const __m128i *)(block[s] + 16 * i)), swap)
                                : schedule(w[s], i);
            m[s] = _mm_add_epi32(w[s][i & 3], k);
        }
        for (int s = 0; s < 2; s++) {
            cdgh[s] = _mm_sha256rnds2_epu32(cdgh[s], abef[s], m[s]);
        }
        for (int s = 0; s < 2; s++) {
            abef[s] = _mm_sha256rnds2_epu32(abef[s], cdgh[s], _mm_shuffle_epi32(m[s], 0x0E));
        }
    }
    for (int s = 0; s < 2; s++) {
        __m128i a = _mm_add_epi32(abef[s], abef0), c = _mm_add_epi32(cdgh[s], cdgh0);
        __m128i feba = _mm_shuffle_epi32(a, 0x1B), dchg = _mm_shuffle_epi32(c, 0xB1);
        __m128i lo = _mm_blend_epi16(feba, dchg, 0xF0); /* DCBA: H0..H3 in lanes 0..3 */
        __m128i hi = _mm_alignr_epi8(dchg, feba, 8);    /* HGFE: H4..H7 */
        _mm_storeu_si128((__m128i *)digest[s], _mm_shuffle_epi8(lo, swap));
        _mm_storeu_si128((__m128i *)(digest[s] + 16), _mm_shuffle_epi8(hi, swap));
    }
}

static int
has_sha_extensions(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) {
        return 0;
    }
    return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & bit_SHA);
}
#else
static int
has_sha_extensions(void)
{
    return 0;
}
static void
compress_pair(const unsigned char *const block[2], unsigned char *const digest[2])
{
    (void)block;
    (void)digest;
}
#endif

int sha256_pairs = -1; /* set by sha256_pairs_init */

void
sha256_pairs_init(void)
{
    sha256_pairs = has_sha_extensions() && getenv("TRAILKEEP_NO_SHA_PAIRS") == NULL;
}

/* Pad a message of at most 55 bytes into its one block. */
void
sha256_pad(unsigned char block[64], const unsigned char *message, size_t size)
{
    memcpy(block, message, size);
    block[size] = 0x80;
    memset(block + size + 1, 0, 56 - size - 1);
    uint64_t bits = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++) {
        block[63 - i] = (unsigned char)(bits >> (8 * i));
    }
}

void
sha256_pair(const unsigned char *a, const unsigned char *b, unsigned char *da, unsigned char *db)
{
    const unsigned char *const block[2] = {a, b};
    unsigned char *const digest[2] = {da, db};
    compress_pair(block, digest);
}

FL_DOC(sha256_pair_doc,
"sha256_pair(a, b, /)\n--\n\n"
"The SHA-256 digests of two messages of at most 55 bytes each, computed together as the row\n"
"check computes commitments (None without the CPU's SHA extensions): for the tests.");

PyObject *
sha256_pair_py(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) ||
        PyBytes_GET_SIZE(args[0]) > 55 || PyBytes_GET_SIZE(args[1]) > 55) {
        PyErr_SetString(PyExc_ValueError, "sha256_pair() takes two bytes of at most 55 bytes");
        return NULL;
    }
    if (!sha256_pairs) {
        Py_RETURN_NONE;
    }
    unsigned char block[2][64], digest[2][SHA256_DIGEST_LENGTH];
    for (int i = 0; i < 2; i++) {
        sha256_pad(block[i], (const unsigned char *)PyBytes_AS_STRING(args[i]),
                   (size_t)PyBytes_GET_SIZE(args[i]));
    }
    sha256_pair(block[0], block[1], digest[0], digest[1]);
    return Py_BuildValue("(y#y#)", digest[0], (Py_ssize_t)SHA256_DIGEST_LENGTH, digest[1],
                         (Py_ssize_t)SHA256_DIGEST_LENGTH);
}
