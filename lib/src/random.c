#include "tether/random.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>

static pthread_mutex_t random_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_entropy_context random_entropy;
static mbedtls_ctr_drbg_context random_drbg;
static bool random_seeded;
static pid_t random_pid;

/* Called with random_lock held. Reseeds after fork so parent and child
 * never share an output stream. */
static int random_ready(void)
{
    static const unsigned char personalisation[] = "tether random";
    pid_t pid = getpid();

    if (random_seeded && random_pid == pid)
        return 0;
    if (random_seeded) {
        random_pid = pid;
        return mbedtls_ctr_drbg_reseed(&random_drbg, (const unsigned char *)&pid, sizeof(pid));
    }
    mbedtls_entropy_init(&random_entropy);
    mbedtls_ctr_drbg_init(&random_drbg);
    if (mbedtls_ctr_drbg_seed(&random_drbg, mbedtls_entropy_func, &random_entropy,
                              personalisation, sizeof(personalisation) - 1) != 0) {
        mbedtls_ctr_drbg_free(&random_drbg);
        mbedtls_entropy_free(&random_entropy);
        return -1;
    }
    random_seeded = true;
    random_pid = pid;
    return 0;
}

int tether_random_mbedtls(void *p_rng, unsigned char *buf, size_t len)
{
    int ret;

    (void)p_rng;
    pthread_mutex_lock(&random_lock);
    ret = random_ready();
    /* mbedtls_ctr_drbg_random gives at most MBEDTLS_CTR_DRBG_MAX_REQUEST per call. */
    while (ret == 0 && len > 0) {
        size_t chunk = len < MBEDTLS_CTR_DRBG_MAX_REQUEST ? len : MBEDTLS_CTR_DRBG_MAX_REQUEST;
        ret = mbedtls_ctr_drbg_random(&random_drbg, buf, chunk);
        buf += chunk;
        len -= chunk;
    }
    pthread_mutex_unlock(&random_lock);
    return ret;
}

tether_status_t tether_random_bytes(void *buf, size_t len)
{
    if (buf == NULL && len > 0)
        return TETHER_ERR_INVALID_ARGUMENT;
    return tether_random_mbedtls(NULL, buf, len) == 0 ? TETHER_OK : TETHER_ERR_CRYPTO;
}
