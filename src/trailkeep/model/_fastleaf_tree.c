/* trailkeep.model._fastleaf: see _fastleaf.c. */
#include "_fastleaf.h"

FL_DOC(parents_doc,
"parents(nodes, /)\n--\n\n"
"One level up an RFC 9162 tree: SHA-256(0x01 || left || right) of each pair of a list of\n"
"32-byte hashes of even length.");

PyObject *
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

FL_DOC(climb_doc,
"climb(leaves, prefix, /)\n--\n\n"
"Every level of the subtree over `leaves`, 2**k 32-byte hashes concatenated: a list of k\n"
"bytes, level 1 to level k (the last is the subtree's root), each the level's nodes\n"
"concatenated. An interior node is SHA-256(0x01 || left || right) if prefix (RFC 9162), else\n"
"SHA-256(left || right) (Pangea's tree).");

PyObject *
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
