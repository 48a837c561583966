/* SPDX-License-Identifier: MIT */
/* Session ticket keys (tls_ticket.h): HKDF from the cluster secret (or a per-process random
 * one), the OpenSSL key callback, and a per-thread cache of the three keys of the windows
 * around now, so that a handshake derives nothing in the common case and threads share no
 * mutable state. */
#include "tls/tls_ticket.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#include "core/secret.h"

/* Domain separation: the VRRP and database keys use HMAC of the secret with their own
 * labels; these salt and info strings make the ticket keys independent of them. */
static const char ticket_salt[] = "keel tls ticket keys v1";
static const char ticket_info[] = "keel tls ticket key";

struct tls_tickets {
    uint64_t id;        /* unique per object, never reused: the thread caches' tag */
    uint32_t period_ms; /* window length */
    bool is_shared;     /* from the cluster secret */
    char label[64];     /* the frontend's name (CONF_NAME_MAX) */
    uint8_t prk[TLS_TICKET_PRK_LEN];
};

/* ---------------------------------------------------------------- derivation */

static EVP_KDF *hkdf;
static EVP_CIPHER *aes_cbc;
static int ex_index = -1;
static uint8_t process_prk[TLS_TICKET_PRK_LEN];
static bool is_process_prk_ok;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t cache_key;

static void cache_wipe(void *p);

/* Process lifetime: fetched algorithms, the ex_data slot, the random secret used without a
 * cluster secret (kept for the life of the process, so a reload keeps its tickets). */
static void init(void)
{
    hkdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
    aes_cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
    ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    is_process_prk_ok = RAND_priv_bytes(process_prk, sizeof(process_prk)) == 1;
    if (pthread_key_create(&cache_key, cache_wipe) != 0) {
        ex_index = -1;
    }
    ERR_clear_error();
}

static bool init_ok(void)
{
    (void)pthread_once(&init_once, init);
    return hkdf != NULL && aes_cbc != NULL && ex_index >= 0 && is_process_prk_ok;
}

/* One HKDF call (mode: extract only, or expand only). */
static int hkdf_run(int mode, const uint8_t *key, size_t key_len, const void *extra,
                    size_t extra_len, uint8_t *out, size_t out_len)
{
    if (!init_ok()) {
        return -ENOMEM;
    }
    EVP_KDF_CTX *k = EVP_KDF_CTX_new(hkdf);
    if (k == NULL) {
        return -ENOMEM;
    }
    OSSL_PARAM p[5], *q = p;
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
    *q++ = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, key_len);
    *q++ = OSSL_PARAM_construct_octet_string(
        mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? OSSL_KDF_PARAM_SALT : OSSL_KDF_PARAM_INFO,
        (void *)extra, extra_len);
    *q = OSSL_PARAM_construct_end();
    int ok = EVP_KDF_derive(k, out, out_len, p);
    EVP_KDF_CTX_free(k);
    ERR_clear_error();
    return ok == 1 ? 0 : -ENOMEM;
}

int tls_ticket_prk(const uint8_t *secret, size_t len, uint8_t prk[TLS_TICKET_PRK_LEN])
{
    return hkdf_run(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, secret, len, ticket_salt,
                    sizeof(ticket_salt) - 1, prk, TLS_TICKET_PRK_LEN);
}

int tls_ticket_key_derive(const uint8_t prk[TLS_TICKET_PRK_LEN], const char *label, uint64_t window,
                          struct tls_ticket_key *out)
{
    /* info = "keel tls ticket key" 0x00 label 0x00 window (8 bytes, big-endian) */
    uint8_t info[sizeof(ticket_info) + 64 + 1 + 8];
    size_t n = 0, llen = strnlen(label, 64);
    memcpy(info, ticket_info, sizeof(ticket_info)); /* with its NUL */
    n += sizeof(ticket_info);
    memcpy(info + n, label, llen);
    n += llen;
    info[n++] = 0;
    for (int i = 7; i >= 0; i--) {
        info[n++] = (uint8_t)(window >> (8 * i));
    }
    uint8_t okm[sizeof(*out)];
    int rc =
        hkdf_run(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, TLS_TICKET_PRK_LEN, info, n, okm, sizeof(okm));
    if (rc == 0) {
        memcpy(out->name, okm, TLS_TICKET_NAME_LEN);
        memcpy(out->aes, okm + TLS_TICKET_NAME_LEN, TLS_TICKET_AES_LEN);
        memcpy(out->hmac, okm + TLS_TICKET_NAME_LEN + TLS_TICKET_AES_LEN, TLS_TICKET_HMAC_LEN);
    }
    OPENSSL_cleanse(okm, sizeof(okm));
    return rc;
}

/* ---------------------------------------------------------------- the keys object */

static atomic_uint_fast64_t next_id = 1;

struct tls_tickets *tls_tickets_new(const char *secret_file, const char *label, uint32_t period_ms,
                                    struct errbuf *eb)
{
    if (!init_ok()) {
        errbuf_set(eb, "cannot set up session tickets: OpenSSL lacks HKDF or AES-256-CBC");
        return NULL;
    }
    struct tls_tickets *t = OPENSSL_secure_zalloc(sizeof(*t));
    if (t == NULL) {
        errbuf_set(eb, "out of memory for the session ticket keys");
        return NULL;
    }
    t->id = atomic_fetch_add(&next_id, 1);
    t->period_ms = period_ms != 0 ? period_ms : TLS_TICKET_PERIOD_DEFAULT_MS;
    (void)snprintf(t->label, sizeof(t->label), "%s", label);
    if (secret_file == NULL || secret_file[0] == '\0') {
        memcpy(t->prk, process_prk, sizeof(t->prk));
        return t;
    }
    uint8_t buf[SECRET_MAX];
    size_t n = 0;
    int rc = secret_read(secret_file, buf, sizeof(buf), &n, eb);
    if (rc == 0) {
        rc = tls_ticket_prk(buf, n, t->prk);
        if (rc != 0) {
            errbuf_set(eb, "cannot derive the ticket keys from the cluster secret %s", secret_file);
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf)); /* no copy of the secret left on the stack */
    if (rc != 0) {
        tls_tickets_free(t);
        return NULL;
    }
    t->is_shared = true;
    return t;
}

void tls_tickets_free(struct tls_tickets *t)
{
    if (t != NULL) {
        OPENSSL_secure_clear_free(t, sizeof(*t)); /* wipes the key first */
    }
}

bool tls_tickets_is_shared(const struct tls_tickets *t)
{
    return t != NULL && t->is_shared;
}

/* ---------------------------------------------------------------- per-thread cache */

/* The keys of windows w - 1, w and w + 1 of one tls_tickets, kept by each thread: the
 * workers share the contexts but each derives its own copy (a few HKDF calls once per
 * window), so no lock and no shared write. A few slots serve a worker with several TLS
 * frontends. Wiped when the thread exits. */
#define CACHE_SLOTS 4

struct cache_slot {
    uint64_t id; /* tls_tickets.id; 0: empty */
    uint64_t window;
    struct tls_ticket_key keys[3]; /* w - 1, w, w + 1 */
};

struct cache {
    struct cache_slot slot[CACHE_SLOTS];
    unsigned next; /* the slot to replace */
};

static _Thread_local struct cache tl_cache;
static _Thread_local bool tl_cache_registered;

static void cache_wipe(void *p)
{
    OPENSSL_cleanse(p, sizeof(struct cache));
}

/* The wall clock in ms (the windows must agree between nodes: a monotonic clock would
 * not). A pointer so that the unit tests move time. */
static uint64_t clock_realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
static uint64_t (*now_ms)(void) = clock_realtime_ms;

/* t's keys around the current window, derived on this thread when the window moved. NULL
 * when the derivation failed (out of memory): the handshake then goes without tickets. */
static const struct cache_slot *keys_now(const struct tls_tickets *t)
{
    uint64_t w = tls_ticket_window(now_ms(), t->period_ms);
    struct cache *c = &tl_cache;
    for (unsigned i = 0; i < CACHE_SLOTS; i++) {
        if (c->slot[i].id == t->id && c->slot[i].window == w) {
            return &c->slot[i];
        }
    }
    if (!tl_cache_registered) {
        /* The destructor wipes the cache when the thread exits. */
        tl_cache_registered = pthread_setspecific(cache_key, c) == 0;
    }
    struct cache_slot *s = NULL;
    for (unsigned i = 0; i < CACHE_SLOTS && s == NULL; i++) {
        if (c->slot[i].id == t->id) {
            s = &c->slot[i]; /* same keys, older window: reuse its slot */
        }
    }
    if (s == NULL) {
        s = &c->slot[c->next];
        c->next = (c->next + 1) % CACHE_SLOTS;
    }
    s->id = 0;
    for (int k = 0; k < 3; k++) {
        if (tls_ticket_key_derive(t->prk, t->label, w - 1 + (uint64_t)k, &s->keys[k]) != 0) {
            OPENSSL_cleanse(s, sizeof(*s));
            return NULL;
        }
    }
    s->id = t->id;
    s->window = w;
    return s;
}

/* ---------------------------------------------------------------- the callback */

static int set_keys(const struct tls_ticket_key *k, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                    EVP_MAC_CTX *hctx, int enc)
{
    OSSL_PARAM p[3];
    p[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac));
    p[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    p[2] = OSSL_PARAM_construct_end();
    int ok = enc ? EVP_EncryptInit_ex(cctx, aes_cbc, NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(cctx, aes_cbc, NULL, k->aes, iv);
    return ok == 1 && EVP_MAC_CTX_set_params(hctx, p) == 1;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb). Encrypting: the
 * current window's key and a random IV; 1, or -1 to send no ticket. Decrypting: the key
 * whose name the ticket carries among the three windows; 1 if it is the current one in TLS
 * 1.2, 2 if it is the previous or next one or the connection is TLS 1.3 (OpenSSL then issues
 * a fresh ticket), 0 when no key
 * matches (an old ticket, another cluster's: a full handshake). Never blocks. */
static int on_ticket_key(SSL *ssl, unsigned char key_name[16], unsigned char *iv,
                         EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    const struct tls_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index);
    const struct cache_slot *s = t != NULL ? keys_now(t) : NULL;
    if (s == NULL) {
        return enc ? -1 : 0;
    }
    if (enc) {
        const struct tls_ticket_key *k = &s->keys[1];
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(aes_cbc)) != 1 ||
            !set_keys(k, iv, cctx, hctx, 1)) {
            ERR_clear_error();
            return -1;
        }
        memcpy(key_name, k->name, TLS_TICKET_NAME_LEN);
        return 1;
    }
    static const int order[3] = {1, 0, 2}; /* the current key first: the usual case */
    for (int i = 0; i < 3; i++) {
        const struct tls_ticket_key *k = &s->keys[order[i]];
        if (CRYPTO_memcmp(key_name, k->name, TLS_TICKET_NAME_LEN) == 0) {
            if (!set_keys(k, iv, cctx, hctx, 0)) {
                ERR_clear_error();
                return 0;
            }
            /* TLS 1.3 sends a new ticket on a resumed connection only when told to renew:
             * without one, a client that uses each ticket once (RFC 8446 C.4) would make a
             * full handshake every other time. TLS 1.2 keeps its ticket until the key ages. */
            return order[i] == 1 && SSL_version(ssl) < TLS1_3_VERSION ? 1 : 2;
        }
    }
    return 0;
}

int tls_tickets_install(struct tls_tickets *t, SSL_CTX *ctx, struct errbuf *eb)
{
    /* Stateless tickets only: a server-side session cache would be per process (no use to
     * the other workers' threads without a lock, none to the other node). */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (t == NULL) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        if (SSL_CTX_set_num_tickets(ctx, 0) != 1) {
            errbuf_set(eb, "cannot turn session tickets off");
            ERR_clear_error();
            return -KEEL_ECONFIG;
        }
        return 0;
    }
    if (!init_ok() || SSL_CTX_set_ex_data(ctx, ex_index, t) != 1 ||
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key) != 1) {
        errbuf_set(eb, "cannot set the session ticket callback");
        ERR_clear_error();
        return -KEEL_ECONFIG;
    }
    /* A ticket lives one period: whatever its place in its window, the node that made it
     * and every node of the cluster accept it that long (its key is accepted until the end
     * of the next window). The TLS 1.3 lifetime hint says the same to the client. */
    (void)SSL_CTX_set_timeout(ctx, (long)((t->period_ms + 999u) / 1000u)); /* old value */
    return 0;
}
