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
 * which costs more than hashing a field. Where the CPU has SHA extensions, a row's one-block
 * commitments are compressed two at a time instead (_fastleaf_sha2x.c).
 *
 * One module in several sources (setup.py lists them), sharing _fastleaf.h: its types and the
 * small helpers of the hot loops, static inline so that each source inlines them as before.
 *   _fastleaf.c         this: the tables, the interned keys, the method table, PyInit__fastleaf
 *   _fastleaf_buffer.c  integers, salts (base64), SHA-256 of a Buffer, hex, JCS strings
 *   _fastleaf_sha2x.c   two one-block SHA-256 digests at once (SHA extensions)
 *   _fastleaf_leaf.c    the leaf and the commitments: leaf(), commit(), prefix()
 *   _fastleaf_json.c    scan_body: a stored body read without making Python objects of it
 *   _fastleaf_rows.c    verify database's check of one stored row (check_row)
 *   _fastleaf_tally.c   Tally: the rollup recount and its comparison with the stored rollups
 *   _fastleaf_sqlite.c  check_rows() and SQLiteRows: chunks of rows, from tuples or stepped
 *   _fastleaf_tree.c    parents(), climb(): RFC 9162 interior nodes
 *   _fastleaf_bundle.c  bundle_events(), bundle_chunk(): a bundle's event lines
 */
#include "_fastleaf.h"

signed char b64_value[256]; /* -1 for bytes outside the standard alphabet */
/* bytes a JSON string cannot hold as they are: the quote, the backslash, controls; and 0x80+ */
unsigned char string_special[256];
char hex_pairs[512]; /* "000102...ff" */
signed char hex_value[256]; /* 0-15 for 0-9a-f (lowercase only), else -1 */

static void
init_tables(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    memset(b64_value, -1, sizeof b64_value);
    memset(hex_value, -1, sizeof hex_value);
    for (int c = 0; c < 16; c++) {
        hex_value[(unsigned char)hex_digits[c]] = (signed char)c;
    }
    for (int c = 0; c < 256; c++) {
        string_special[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
        hex_pairs[2 * c] = hex_digits[c >> 4];
        hex_pairs[2 * c + 1] = hex_digits[c & 0xf];
    }
    for (int i = 0; i < 64; i++) {
        b64_value[(unsigned char)alphabet[i]] = (signed char)i;
    }
}

PyObject *SQLiteError; /* _fastleaf.SQLiteError */
/* interned dict keys, made at import */
PyObject *k_timestamp, *k_action, *k_category, *k_outcome, *k_actor, *k_target, *k_source,
    *k_session_id, *k_request_id, *k_trace_id, *k_idempotency_key, *k_message, *k_id, *k_email,
    *k_type, *k_ip, *k_client_id, *s_unknown, *s_event_redact;

static int
intern_keys(void)
{
    struct { PyObject **slot; const char *text; } keys[] = {
        {&k_timestamp, "timestamp"}, {&k_action, "action"}, {&k_category, "category"},
        {&k_outcome, "outcome"}, {&k_actor, "actor"}, {&k_target, "target"},
        {&k_source, "source"}, {&k_session_id, "session_id"}, {&k_request_id, "request_id"},
        {&k_trace_id, "trace_id"}, {&k_idempotency_key, "idempotency_key"},
        {&k_message, "message"}, {&k_id, "id"}, {&k_email, "email"}, {&k_type, "type"},
        {&k_ip, "ip"}, {&k_client_id, "client_id"}, {&s_unknown, "unknown"},
        {&s_event_redact, "event.redact"},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (*keys[i].slot == NULL && (*keys[i].slot = PyUnicode_InternFromString(keys[i].text)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static PyMethodDef methods[] = {
    {"prefix", (PyCFunction)(void (*)(void))prefix, METH_FASTCALL, prefix_doc},
    {"leaf", (PyCFunction)(void (*)(void))leaf, METH_FASTCALL, leaf_doc},
    {"commit", (PyCFunction)(void (*)(void))commit, METH_FASTCALL, commit_doc},
    {"check_rows", (PyCFunction)(void (*)(void))check_rows, METH_FASTCALL, check_rows_doc},
    {"parents", (PyCFunction)parents, METH_O, parents_doc},
    {"bundle_events", (PyCFunction)(void (*)(void))bundle_events, METH_FASTCALL, bundle_events_doc},
    {"bundle_chunk", (PyCFunction)(void (*)(void))bundle_chunk, METH_FASTCALL, bundle_chunk_doc},
    {"climb", (PyCFunction)(void (*)(void))climb, METH_FASTCALL, climb_doc},
    {"sha256_pair", (PyCFunction)(void (*)(void))sha256_pair_py, METH_FASTCALL, sha256_pair_doc},
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
    sha256_pairs_init();
    if (intern_keys() < 0 || PyType_Ready(&SQLiteRowsType) < 0 || PyType_Ready(&TallyType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    if (SQLiteError == NULL) {
        SQLiteError = PyErr_NewException("trailkeep.model._fastleaf.SQLiteError", NULL, NULL);
    }
    /* the leaf layout written by add_positions: evidence.py uses this module only if it matches */
    if (SQLiteError == NULL || PyModule_AddIntConstant(m, "LEAF_VERSION", 1) < 0 ||
        PyModule_AddObjectRef(m, "SQLiteError", SQLiteError) < 0 ||
        PyModule_AddObjectRef(m, "SQLiteRows", (PyObject *)&SQLiteRowsType) < 0 ||
        PyModule_AddObjectRef(m, "Tally", (PyObject *)&TallyType) < 0 ||
        PyModule_AddIntConstant(m, "SHA256_PAIRS", sha256_pairs) < 0 ||
        /* SQLiteRows' connections have the aggregates trailkeep_rows, trailkeep_hashes and
         * trailkeep_rollups (storage._sqlite_audit writes its queries for them) */
        PyModule_AddIntConstant(m, "AUDIT_AGGREGATES", 1) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
