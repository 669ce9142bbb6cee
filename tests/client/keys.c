/* keys.c (client_keys): the key-file functions of libvolli, for the integration tests.
 *
 * Usage: client_keys gen FILE    volli_keygen + volli_key_save
 *        client_keys load FILE   volli_key_load
 * Prints {"ok":true,"publicKey":BASE64} (exit 0) or {"ok":false,"status":N,"error":TEXT}
 * (exit 1). Never prints the private key. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "volli/volli.h"

int main(int argc, char **argv)
{
    if (argc != 3 || (strcmp(argv[1], "gen") != 0 && strcmp(argv[1], "load") != 0)) {
        fprintf(stderr, "usage: client_keys gen|load FILE\n");
        return 2;
    }
    volli_keypair_t kp;
    int rc;
    if (strcmp(argv[1], "gen") == 0) {
        rc = volli_keygen(&kp);
        if (rc == 0)
            rc = volli_key_save(&kp, argv[2]);
    } else {
        rc = volli_key_load(argv[2], &kp);
    }
    json_t *o;
    if (rc == 0) {
        char b64[45];
        rc = volli_key_public_base64(&kp, b64, sizeof b64);
        o = json_pack("{s:b, s:s}", "ok", rc == 0, "publicKey", rc == 0 ? b64 : "");
    } else {
        o = json_pack("{s:b, s:i, s:s}", "ok", 0, "status", rc, "error", volli_strerror(rc));
    }
    memset(&kp, 0, sizeof kp);
    char *s = json_dumps(o, JSON_COMPACT);
    puts(s);
    free(s);
    json_decref(o);
    return rc == 0 ? 0 : 1;
}
