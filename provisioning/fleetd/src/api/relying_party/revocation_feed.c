#include "revocation_feed.h"

#include <string.h>

void tether_revocation_feed_init(tether_revocation_feed_t *feed, tether_store_t *store)
{
    if (feed == NULL)
        return;
    memset(feed, 0, sizeof(*feed));
    feed->store = store;
    pthread_mutex_init(&feed->lock, NULL);
}

void tether_revocation_feed_free(tether_revocation_feed_t *feed)
{
    if (feed == NULL || feed->store == NULL)
        return;
    pthread_mutex_destroy(&feed->lock);
    memset(feed, 0, sizeof(*feed));
}

void tether_revocation_feed_notify(tether_revocation_feed_t *feed)
{
    if (feed == NULL || feed->store == NULL)
        return;
    pthread_mutex_lock(&feed->lock);
    feed->fresh = false;
    pthread_mutex_unlock(&feed->lock);
}

static int64_t elapsed_ms(const struct timespec *since, const struct timespec *now)
{
    return (int64_t)(now->tv_sec - since->tv_sec) * 1000 +
           (now->tv_nsec - since->tv_nsec) / 1000000;
}

tether_status_t tether_revocation_feed_head(tether_revocation_feed_t *feed, int64_t *head)
{
    struct timespec now;
    tether_status_t rc = TETHER_OK;

    if (feed == NULL || feed->store == NULL || head == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* Under the lock, so that many waiters polled together read once. */
    pthread_mutex_lock(&feed->lock);
    if (!feed->fresh || elapsed_ms(&feed->read_at, &now) >= TETHER_FEED_HEAD_MAX_AGE_MS) {
        int64_t seq = 0;

        /* Marked fresh before the read: a notify during it makes the next
         * call read again. */
        feed->fresh = true;
        rc = tether_store_revocation_head(feed->store, &seq);
        if (rc == TETHER_OK) {
            feed->head = seq;
            feed->read_at = now;
        } else {
            feed->fresh = false;
        }
    }
    *head = feed->head;
    pthread_mutex_unlock(&feed->lock);
    return rc;
}

typedef struct page {
    cJSON *list;
    bool out_of_memory;
} page_t;

static int add_entry(void *arg, const tether_store_revocation_t *rev)
{
    page_t *page = arg;
    cJSON *item = cJSON_CreateObject();

    if (item == NULL) {
        page->out_of_memory = true;
        return 1;
    }
    if (cJSON_AddNumberToObject(item, "seq", (double)rev->seq) == NULL ||
        cJSON_AddStringToObject(item, "device_id", rev->device_id) == NULL ||
        (rev->jti != NULL ? cJSON_AddStringToObject(item, "jti", rev->jti)
                          : cJSON_AddNullToObject(item, "jti")) == NULL ||
        cJSON_AddStringToObject(item, "reason", rev->reason != NULL ? rev->reason : "") == NULL ||
        cJSON_AddNumberToObject(item, "created_at", (double)rev->created_at) == NULL ||
        !cJSON_AddItemToArray(page->list, item)) {
        cJSON_Delete(item);
        page->out_of_memory = true;
        return 1;
    }
    return 0;
}

tether_status_t tether_revocation_feed_page(tether_store_t *store, int64_t after, cJSON **answer,
                                            size_t *count)
{
    cJSON *json;
    page_t page = {NULL, false};
    const cJSON *last;
    double last_seq = (double)after;
    tether_status_t rc;
    int size;

    if (answer == NULL)
        return TETHER_ERR_INVALID_ARGUMENT;
    *answer = NULL;
    if (count != NULL)
        *count = 0;
    if ((json = cJSON_CreateObject()) == NULL ||
        (page.list = cJSON_AddArrayToObject(json, "revocations")) == NULL) {
        cJSON_Delete(json);
        return TETHER_ERR_NO_MEMORY;
    }
    rc = tether_store_revocation_list(store, after, TETHER_FLEET_FEED_PAGE, add_entry, &page);
    if (rc == TETHER_OK && page.out_of_memory)
        rc = TETHER_ERR_NO_MEMORY;
    size = cJSON_GetArraySize(page.list);
    if (rc == TETHER_OK && size > 0 &&
        (last = cJSON_GetArrayItem(page.list, size - 1)) != NULL)
        last_seq = cJSON_GetObjectItemCaseSensitive(last, "seq")->valuedouble;
    if (rc == TETHER_OK && cJSON_AddNumberToObject(json, "last_seq", last_seq) == NULL)
        rc = TETHER_ERR_NO_MEMORY;
    if (rc != TETHER_OK) {
        cJSON_Delete(json);
        return rc;
    }
    *answer = json;
    if (count != NULL)
        *count = (size_t)size;
    return TETHER_OK;
}
