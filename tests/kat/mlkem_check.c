/* mlkem_check: reads ML-KEM-768 vectors from tests/kat/mlkem_vectors.mjs (@noble/post-quantum)
 * on stdin and checks crypto/mlkem against every field: keygen and encapsulation byte for byte,
 * decapsulation, implicit rejection (against noble's output and against J(z || c') computed
 * here with OpenSSL's SHAKE256), the modulus and hash checks, and wrong-length refusals.
 * Prints "ok N" and exits 0, or names the first failing record and field and exits 1 (never the
 * key material itself). Exit 2 for malformed input. */
#include "common/error.h"
#include "common/url.h"
#include "crypto/mlkem.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SEED, EK, DK, MSG, CT, SS, CT_BAD, SS_BAD, J_BAD, EK_BAD, DK_BAD, NFIELDS };

static const struct {
    const char *name;
    size_t len;
} FIELDS[NFIELDS] = {
    [SEED] = {"seed", VS_MLKEM768_SEED_LEN},   [EK] = {"ek", VS_MLKEM768_EK_LEN},
    [DK] = {"dk", VS_MLKEM768_DK_LEN},         [MSG] = {"msg", VS_MLKEM768_MSG_LEN},
    [CT] = {"ct", VS_MLKEM768_CT_LEN},         [SS] = {"ss", VS_MLKEM768_SS_LEN},
    [CT_BAD] = {"ct_bad", VS_MLKEM768_CT_LEN}, [SS_BAD] = {"ss_bad", VS_MLKEM768_SS_LEN},
    [J_BAD] = {"j_bad", VS_MLKEM768_SS_LEN},   [EK_BAD] = {"ek_bad", VS_MLKEM768_EK_LEN},
    [DK_BAD] = {"dk_bad", VS_MLKEM768_DK_LEN},
};

struct record {
    uint8_t v[NFIELDS][VS_MLKEM768_DK_LEN];
    int have[NFIELDS];
};

static unsigned long record_no;

static int fail(const char *what)
{
    fprintf(stderr, "mlkem_check: record %lu: %s\n", record_no, what);
    return -1;
}

static int unhex(uint8_t *out, size_t len, const char *hex)
{
    if (strlen(hex) != 2 * len)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int hi = vs_hex_value(hex[2 * i]), lo = vs_hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

static int shake256_j(uint8_t out[32], const uint8_t z[32], const uint8_t *c, size_t len)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx && EVP_DigestInit_ex(ctx, EVP_shake256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, z, 32) == 1 && EVP_DigestUpdate(ctx, c, len) == 1 &&
             EVP_DigestFinalXOF(ctx, out, 32) == 1;
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -1;
}

static int check_record(const struct record *r)
{
    uint8_t ek[VS_MLKEM768_EK_LEN], dk[VS_MLKEM768_DK_LEN], ct[VS_MLKEM768_CT_LEN];
    uint8_t ss[32], ss2[32], j[32];
    const uint8_t *z = r->v[DK] + VS_MLKEM768_DK_LEN - 32;

    for (int f = 0; f < NFIELDS; f++) {
        if (!r->have[f]) {
            fprintf(stderr, "mlkem_check: record %lu: field %s missing\n", record_no,
                    FIELDS[f].name);
            return -1;
        }
    }
    if (memcmp(r->v[SEED] + 32, z, 32) != 0)
        return fail("noble's dk does not end with z");

    if (vs_mlkem768_keygen_derand(ek, dk, r->v[SEED], r->v[SEED] + 32) != 0)
        return fail("keygen_derand failed");
    if (memcmp(ek, r->v[EK], sizeof ek) != 0)
        return fail("ek differs");
    if (memcmp(dk, r->v[DK], sizeof dk) != 0)
        return fail("dk differs");

    if (vs_mlkem768_encaps_derand(ct, ss, ek, r->v[MSG]) != 0)
        return fail("encaps_derand failed");
    if (memcmp(ct, r->v[CT], sizeof ct) != 0)
        return fail("ct differs");
    if (memcmp(ss, r->v[SS], sizeof ss) != 0)
        return fail("ss differs");

    if (vs_mlkem768_decaps(ss2, r->v[CT], dk) != 0 || memcmp(ss2, r->v[SS], 32) != 0)
        return fail("decaps of ct differs");

    if (vs_mlkem768_decaps(ss2, r->v[CT_BAD], dk) != 0)
        return fail("decaps of ct_bad failed");
    if (memcmp(ss2, r->v[SS_BAD], 32) != 0)
        return fail("implicit rejection differs from noble");
    if (memcmp(ss2, r->v[J_BAD], 32) != 0)
        return fail("implicit rejection differs from J(z||c') of @noble/hashes");
    if (shake256_j(j, z, r->v[CT_BAD], VS_MLKEM768_CT_LEN) != 0 || memcmp(ss2, j, 32) != 0)
        return fail("implicit rejection differs from OpenSSL SHAKE256(z||c')");
    if (memcmp(ss2, r->v[SS], 32) == 0)
        return fail("implicit rejection returned the real secret");

    if (vs_mlkem768_encaps_derand(ct, ss, r->v[EK_BAD], r->v[MSG]) != VS_EINVAL)
        return fail("ek_bad (coefficient >= q) accepted");
    if (vs_mlkem768_decaps(ss2, r->v[CT], r->v[DK_BAD]) != VS_EINVAL)
        return fail("dk_bad (hash check) accepted");

    static const ptrdiff_t deltas[] = {-1, 1, -(ptrdiff_t)VS_MLKEM768_CT_LEN};
    for (size_t i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
        if (vs_mlkem768_encaps_checked(ct, ss, ek, (size_t)(VS_MLKEM768_EK_LEN + deltas[i])) !=
            VS_EINVAL)
            return fail("encaps_checked accepted a wrong ek length");
        if (vs_mlkem768_decaps_checked(ss2, r->v[CT], (size_t)(VS_MLKEM768_CT_LEN + deltas[i]), dk,
                                       VS_MLKEM768_DK_LEN) != VS_EINVAL)
            return fail("decaps_checked accepted a wrong ct length");
        if (vs_mlkem768_decaps_checked(ss2, r->v[CT], VS_MLKEM768_CT_LEN, dk,
                                       (size_t)(VS_MLKEM768_DK_LEN + deltas[i])) != VS_EINVAL)
            return fail("decaps_checked accepted a wrong dk length");
    }
    if (vs_mlkem768_decaps_checked(ss2, r->v[CT], VS_MLKEM768_CT_LEN, dk, VS_MLKEM768_DK_LEN) !=
            0 ||
        memcmp(ss2, r->v[SS], 32) != 0)
        return fail("decaps_checked with correct lengths differs");
    return 0;
}

int main(void)
{
    static struct record rec;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long checked = 0;
    int status = 0;

    while ((n = getline(&line, &cap, stdin)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (strcmp(line, "end") == 0) {
            record_no = checked + 1;
            if (check_record(&rec) != 0) {
                status = 1;
                break;
            }
            checked++;
            memset(&rec, 0, sizeof rec);
            continue;
        }
        char *sp = strchr(line, ' ');
        int f = NFIELDS;
        if (sp) {
            *sp = '\0';
            for (f = 0; f < NFIELDS && strcmp(line, FIELDS[f].name) != 0; f++)
                ;
        }
        if (f == NFIELDS || unhex(rec.v[f], FIELDS[f].len, sp + 1) != 0) {
            fprintf(stderr, "mlkem_check: malformed line in record %lu\n", checked + 1);
            status = 2;
            break;
        }
        rec.have[f] = 1;
    }
    free(line);
    if (status == 0 && checked == 0) {
        fprintf(stderr, "mlkem_check: no records\n");
        status = 2;
    }
    if (status == 0)
        printf("ok %lu\n", checked);
    return status;
}
