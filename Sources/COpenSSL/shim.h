#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509.h>
#include <openssl/pem.h>
#include <openssl/evp.h>

// Macros Swift cannot import, as functions.
static inline long portless_BIO_get_mem_data(BIO *bio, char **pp) { return BIO_get_mem_data(bio, pp); }
static inline int portless_SSL_set_tlsext_host_name(SSL *ssl, const char *name) { return SSL_set_tlsext_host_name(ssl, name); }
static inline long portless_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long portless_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int v) { return SSL_CTX_set_min_proto_version(ctx, v); }

// AES-256-GCM through EVP, with 12-byte nonces and 16-byte tags, for the link records and the
// end-to-end circuits: one context per key, no allocation per message, `in` may equal `out`.
static inline EVP_CIPHER_CTX *portless_gcm_new(const unsigned char *key, int encrypt) {
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx) return NULL;
    int ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL)
                     : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, NULL);
    if (ok != 1) { EVP_CIPHER_CTX_free(ctx); return NULL; }
    return ctx;
}

static inline int portless_gcm_seal(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *aad, int aad_len,
                                    const unsigned char *in, unsigned char *out, int len, unsigned char *tag) {
    int n = 0;
    unsigned char final[16];
    if (EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1) return 0;
    if (aad_len > 0 && EVP_EncryptUpdate(ctx, NULL, &n, aad, aad_len) != 1) return 0;
    if (len > 0 && EVP_EncryptUpdate(ctx, out, &n, in, len) != 1) return 0;
    if (EVP_EncryptFinal_ex(ctx, final, &n) != 1) return 0;
    return EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
}

static inline int portless_gcm_open(EVP_CIPHER_CTX *ctx, const unsigned char *nonce, const unsigned char *aad, int aad_len,
                                    const unsigned char *in, unsigned char *out, int len, const unsigned char *tag) {
    int n = 0;
    unsigned char final[16];
    if (EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, nonce) != 1) return 0;
    if (aad_len > 0 && EVP_DecryptUpdate(ctx, NULL, &n, aad, aad_len) != 1) return 0;
    if (len > 0 && EVP_DecryptUpdate(ctx, out, &n, in, len) != 1) return 0;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, (void *)tag) != 1) return 0;
    return EVP_DecryptFinal_ex(ctx, final, &n) == 1;
}
