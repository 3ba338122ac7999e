/* digest: SHA-256 with the algorithm fetched once (digest.h). */
#include "digest.h"

#include <openssl/evp.h>
#include <pthread.h>

static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static EVP_MD *sha256_md; /* kept for the process's life, like OpenSSL's own tables */

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int digest_sha256(const void *p, size_t n, uint8_t out[DIGEST_SHA256_LEN])
{
    pthread_once(&sha256_once, sha256_fetch);
    unsigned len = 0;
    const EVP_MD *md = sha256_md != NULL ? sha256_md : EVP_sha256();
    return EVP_Digest(p, n, out, &len, md, NULL) == 1 && len == DIGEST_SHA256_LEN ? 0 : -1;
}
