/* keys.c: Ed25519 key pairs, their PEM (PKCS#8) files and register signatures, with OpenSSL 3.
 * Key files are private: created exclusively with mode 0600 whatever the umask, and refused on
 * load when they are not a regular file or group/others have any access to them, the way ssh
 * treats identity files. Secrets are wiped from every buffer this file fills. */
#include "internal.h"

#include "common/base64.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A PEM Ed25519 private key is about 119 bytes; anything much larger is not one of ours. */
#define KEY_FILE_MAX 16384

static EVP_PKEY *pkey_from_seed(const uint8_t seed[32])
{
    return EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, 32);
}

int vl_public_from_seed(const uint8_t seed[32], uint8_t pub[32])
{
    EVP_PKEY *pk = pkey_from_seed(seed);
    size_t n = 32;
    int ok = pk && EVP_PKEY_get_raw_public_key(pk, pub, &n) == 1 && n == 32;
    EVP_PKEY_free(pk);
    return ok ? 0 : VOLLI_ECRYPTO;
}

VOLLI_PUBLIC int volli_keygen(volli_keypair_t *kp)
{
    if (!kp)
        return VOLLI_EINVAL;
    if (RAND_priv_bytes(kp->private_key, 32) != 1)
        return VOLLI_ECRYPTO;
    int rc = vl_public_from_seed(kp->private_key, kp->public_key);
    if (rc != 0)
        OPENSSL_cleanse(kp, sizeof *kp);
    return rc;
}

int vl_sign(const volli_keypair_t *kp, const void *msg, size_t len, uint8_t sig[64])
{
    EVP_PKEY *pk = pkey_from_seed(kp->private_key);
    if (!pk)
        return VOLLI_ECRYPTO;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t slen = 64;
    int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, pk) == 1 &&
             EVP_DigestSign(ctx, sig, &slen, msg, len) == 1 && slen == 64;
    int rc = ok ? 0 : ctx ? VOLLI_ECRYPTO : VOLLI_ENOMEM;
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(pk);
    return rc;
}

VOLLI_PUBLIC int volli_key_public_base64(const volli_keypair_t *kp, char *out, size_t cap)
{
    if (!kp || !out || cap < vs_base64_encoded_len(32) + 1)
        return VOLLI_EINVAL;
    vs_base64_encode(kp->public_key, 32, out);
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return VOLLI_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

VOLLI_PUBLIC int volli_key_save(const volli_keypair_t *kp, const char *path)
{
    if (!kp || !path || !*path)
        return VOLLI_EINVAL;
    EVP_PKEY *pk = pkey_from_seed(kp->private_key);
    if (!pk)
        return VOLLI_ECRYPTO;
    BIO *bio = BIO_new(BIO_s_secmem());
    if (!bio) {
        EVP_PKEY_free(pk);
        return VOLLI_ENOMEM;
    }
    int rc = 0;
    char *pem = NULL;
    long pem_len = 0;
    if (PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) != 1 ||
        (pem_len = BIO_get_mem_data(bio, &pem)) <= 0)
        rc = VOLLI_ECRYPTO;
    EVP_PKEY_free(pk);
    if (rc == 0) {
        /* O_EXCL: never overwrite (or follow a planted symlink to) an existing file. */
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
            rc = errno == EEXIST ? VOLLI_EEXISTS : VOLLI_EIO;
        } else {
            /* The umask may only have removed bits, but be explicit about the result. */
            if (fchmod(fd, 0600) != 0 || write_all(fd, pem, (size_t)pem_len) != 0 || fsync(fd) != 0)
                rc = VOLLI_EIO;
            if (close(fd) != 0 && rc == 0)
                rc = VOLLI_EIO;
            if (rc != 0)
                unlink(path); /* ours: created above */
        }
    }
    BIO_free(bio); /* secure heap: cleared on free */
    return rc;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return -1; /* encrypted keys are not supported: fail instead of prompting on a terminal */
}

VOLLI_PUBLIC int volli_key_load(const char *path, volli_keypair_t *kp)
{
    if (!path || !kp)
        return VOLLI_EINVAL;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0)
        return VOLLI_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return VOLLI_EIO;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        close(fd);
        return VOLLI_EPERM;
    }
    if (st.st_size <= 0 || st.st_size > KEY_FILE_MAX) {
        close(fd);
        return VOLLI_EINVAL;
    }
    char buf[KEY_FILE_MAX];
    size_t n = 0;
    int rc = 0;
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = VOLLI_EIO;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    EVP_PKEY *pk = NULL;
    if (rc == 0) {
        BIO *bio = BIO_new_mem_buf(buf, (int)n);
        if (!bio)
            rc = VOLLI_ENOMEM;
        else if (!(pk = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)))
            rc = VOLLI_EINVAL;
        BIO_free(bio);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    if (rc == 0) {
        size_t sl = 32, pl = 32;
        if (EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519)
            rc = VOLLI_EINVAL;
        else if (EVP_PKEY_get_raw_private_key(pk, kp->private_key, &sl) != 1 || sl != 32 ||
                 EVP_PKEY_get_raw_public_key(pk, kp->public_key, &pl) != 1 || pl != 32)
            rc = VOLLI_ECRYPTO;
        if (rc != 0)
            OPENSSL_cleanse(kp, sizeof *kp);
    }
    EVP_PKEY_free(pk);
    return rc;
}
