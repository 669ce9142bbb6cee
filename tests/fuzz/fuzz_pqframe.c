/* fuzz_pqframe.c: vs_pq_frame_open on arbitrary text, with an oracle: whenever the input is in
 * the canonical form that is read without jansson, the same text made non-canonical (a space
 * after the opening brace, which only jansson reads) must give the same result and plaintext.
 * Inputs are also sealed as plaintexts and opened again, so the fuzzer reaches the decrypting
 * path with real tags. */
#include "crypto/pqkx.h"
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

static const uint8_t key[VS_PQ_KEY_LEN] = {7, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
                                           16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
                                           29, 30, 31};

static void check(const char *text, size_t len, uint64_t seq)
{
    size_t cap = len + 1, n1 = 0, n2 = 0;
    uint8_t *p1 = malloc(cap), *p2 = malloc(cap + 1);
    int r1 = vs_pq_frame_open(key, seq, text, len, p1, cap, &n1);
    if (len > 1 && text[0] == '{' && vs_pq_frame_is_canonical(text, len)) {
        char *slow = malloc(len + 1);
        slow[0] = '{';
        slow[1] = ' ';
        memcpy(slow + 2, text + 1, len - 1);
        if (vs_pq_frame_is_canonical(slow, len + 1))
            abort(); /* the oracle must go through jansson */
        int r2 = vs_pq_frame_open(key, seq, slow, len + 1, p2, cap + 1, &n2);
        if (r1 != r2 || (r1 == 0 && (n1 != n2 || memcmp(p1, p2, n1) != 0)))
            abort(); /* the fast path disagrees with jansson */
        free(slow);
    }
    free(p1);
    free(p2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 4096)
        return 0;
    uint64_t seq = data[0] % 4 == 3 ? 123456789012345678u : data[0] % 4;
    check((const char *)data + 1, size - 1, seq);
    /* The input as a plaintext, sealed and opened. */
    size_t flen = vs_pq_frame_len(seq, size - 1);
    char *frame = malloc(flen);
    uint8_t *tmp = malloc(size - 1 + VS_PQ_TAG_LEN);
    if (vs_pq_frame_seal(key, seq, data + 1, size - 1, tmp, frame) == 0) {
        if (!vs_pq_frame_is_canonical(frame, flen))
            abort(); /* what we write must take the fast path */
        uint8_t *pt = malloc(size);
        size_t n = 0;
        if (vs_pq_frame_open(key, seq, frame, flen, pt, size, &n) != 0 || n != size - 1 ||
            memcmp(pt, data + 1, n) != 0)
            abort();
        free(pt);
        check(frame, flen, seq);
    }
    free(tmp);
    free(frame);
    return 0;
}
