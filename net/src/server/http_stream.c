#include "tether/http_stream.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_connections.h"
#include "http_stream_server.h"
#include "tether/bytes.h"

/* The server sends at most this much per content-reader call. */
#define READ_BLOCK 16384

struct tether_http_stream {
    pthread_mutex_t lock;
    pthread_cond_t room; /* signalled when bytes leave the queue or the client goes */
    uint8_t *queue;      /* a ring of capacity bytes */
    size_t capacity;
    size_t head;   /* the oldest queued byte */
    size_t queued;
    bool finished; /* the producer is done */
    bool complete; /* ... and the body is whole */
    bool gone;     /* the client (or the server) is done */
    bool suspended; /* the connection waits for bytes */
    unsigned holders;
    struct MHD_Connection *connection;
    tether_http_server_t *server; /* registered in server->streams */
    bool stopping;                /* the server is stopping it (under park_lock) */
    tether_http_stream_t *next;
    tether_http_stream_t *prev;
};

tether_status_t tether_http_stream_create(size_t capacity, tether_http_stream_t **stream)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;
    tether_http_stream_t *s = NULL;

    if (stream != NULL)
        *stream = NULL;
    if (stream == NULL || capacity == 0 || capacity > TETHER_HTTP_STREAM_MAX_CAPACITY)
        goto out;
    rc = TETHER_ERR_NO_MEMORY;
    if ((s = calloc(1, sizeof(*s))) == NULL || (s->queue = malloc(capacity)) == NULL)
        goto out;
    if (pthread_mutex_init(&s->lock, NULL) != 0)
        goto out;
    if (pthread_cond_init(&s->room, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        goto out;
    }
    s->capacity = capacity;
    s->holders = 2;
    *stream = s;
    s = NULL;
    rc = TETHER_OK;
out:
    if (s != NULL) {
        free(s->queue);
        free(s);
    }
    return rc;
}

static void drop_hold(tether_http_stream_t *stream)
{
    bool last;

    pthread_mutex_lock(&stream->lock);
    last = --stream->holders == 0;
    pthread_mutex_unlock(&stream->lock);
    if (!last)
        return;
    pthread_cond_destroy(&stream->room);
    pthread_mutex_destroy(&stream->lock);
    tether_wipe(stream->queue, stream->capacity);
    free(stream->queue);
    tether_wipe(stream, sizeof(*stream));
    free(stream);
}

/* Takes the suspension off the connection, if any: the caller holds the
 * lock, and resumes the returned connection after releasing it. */
static struct MHD_Connection *take_suspended(tether_http_stream_t *stream)
{
    struct MHD_Connection *connection = stream->suspended ? stream->connection : NULL;

    stream->suspended = false;
    return connection;
}

tether_status_t tether_http_stream_write(tether_http_stream_t *stream, const uint8_t *bytes,
                                         size_t len)
{
    tether_status_t rc = TETHER_ERR_INVALID_ARGUMENT;

    if (stream == NULL || (bytes == NULL && len > 0))
        return rc;
    rc = TETHER_OK;
    while (len > 0 && rc == TETHER_OK) {
        struct MHD_Connection *resume = NULL;

        pthread_mutex_lock(&stream->lock);
        while (stream->queued == stream->capacity && !stream->gone)
            pthread_cond_wait(&stream->room, &stream->lock);
        if (stream->gone || stream->finished) {
            rc = TETHER_ERR_STATE;
        } else {
            size_t tail = (stream->head + stream->queued) % stream->capacity;
            size_t n = stream->capacity - stream->queued;

            if (n > stream->capacity - tail)
                n = stream->capacity - tail; /* up to the ring's end this round */
            if (n > len)
                n = len;
            memcpy(stream->queue + tail, bytes, n);
            stream->queued += n;
            bytes += n;
            len -= n;
            resume = take_suspended(stream);
        }
        pthread_mutex_unlock(&stream->lock);
        if (resume != NULL)
            MHD_resume_connection(resume);
    }
    return rc;
}

void tether_http_stream_finish(tether_http_stream_t *stream, bool complete)
{
    struct MHD_Connection *resume;

    if (stream == NULL)
        return;
    pthread_mutex_lock(&stream->lock);
    stream->finished = true;
    stream->complete = complete;
    resume = take_suspended(stream);
    pthread_mutex_unlock(&stream->lock);
    if (resume != NULL)
        MHD_resume_connection(resume);
    drop_hold(stream);
}

ssize_t tether_http_stream_read(tether_http_stream_t *stream, char *buf, size_t max)
{
    ssize_t result;

    pthread_mutex_lock(&stream->lock);
    if (stream->queued > 0) {
        size_t n = stream->queued;

        if (n > stream->capacity - stream->head)
            n = stream->capacity - stream->head;
        if (n > max)
            n = max;
        memcpy(buf, stream->queue + stream->head, n);
        stream->head = (stream->head + n) % stream->capacity;
        stream->queued -= n;
        pthread_cond_broadcast(&stream->room);
        result = (ssize_t)n;
    } else if (stream->finished && stream->complete) {
        result = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (stream->finished || stream->gone) {
        result = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (stream->connection != NULL) {
        stream->suspended = true;
        MHD_suspend_connection(stream->connection);
        result = 0;
    } else {
        result = 0; /* not attached (a unit test): nothing to suspend */
    }
    pthread_mutex_unlock(&stream->lock);
    return result;
}

/* libmicrohttpd's content reader. */
static ssize_t read_queue(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    return tether_http_stream_read(cls, buf, max);
}

static void unregister(tether_http_stream_t *stream)
{
    tether_http_server_t *server = stream->server;

    if (server == NULL)
        return;
    pthread_mutex_lock(&server->park_lock);
    if (stream->prev != NULL)
        stream->prev->next = stream->next;
    else
        server->streams = stream->next;
    if (stream->next != NULL)
        stream->next->prev = stream->prev;
    stream->server = NULL;
    pthread_cond_broadcast(&server->park_cond);
    pthread_mutex_unlock(&server->park_lock);
}

void tether_http_stream_abandon(tether_http_stream_t *stream)
{
    if (stream == NULL)
        return;
    unregister(stream);
    pthread_mutex_lock(&stream->lock);
    stream->gone = true;
    pthread_cond_broadcast(&stream->room);
    pthread_mutex_unlock(&stream->lock);
    drop_hold(stream);
}

/* libmicrohttpd is done with the response: sent, or the client left. */
static void response_done(void *cls)
{
    tether_http_stream_abandon(cls);
}

struct MHD_Response *tether_http_stream_attach(tether_http_stream_t *stream,
                                               tether_http_server_t *server,
                                               struct MHD_Connection *connection)
{
    struct MHD_Response *response;

    stream->connection = connection;
    response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, READ_BLOCK, read_queue,
                                                 stream, response_done);
    if (response == NULL) {
        tether_http_stream_abandon(stream);
        return NULL;
    }
    pthread_mutex_lock(&server->park_lock);
    if (server->closing) {
        /* Stopping already: never suspended, so libmicrohttpd can stop. */
        pthread_mutex_lock(&stream->lock);
        stream->gone = true;
        pthread_mutex_unlock(&stream->lock);
    }
    stream->server = server;
    stream->prev = NULL;
    stream->next = server->streams;
    if (server->streams != NULL)
        server->streams->prev = stream;
    server->streams = stream;
    pthread_mutex_unlock(&server->park_lock);
    return response;
}

/* The next registered stream not yet stopped, with a hold taken; NULL when
 * none is left. No libmicrohttpd call is made under park_lock. */
static tether_http_stream_t *next_to_stop(tether_http_server_t *server)
{
    tether_http_stream_t *found = NULL;

    pthread_mutex_lock(&server->park_lock);
    for (tether_http_stream_t *s = server->streams; s != NULL && found == NULL; s = s->next) {
        if (!s->stopping) {
            s->stopping = true;
            pthread_mutex_lock(&s->lock);
            s->holders++;
            pthread_mutex_unlock(&s->lock);
            found = s;
        }
    }
    pthread_mutex_unlock(&server->park_lock);
    return found;
}

void tether_http_stream_stop_all(tether_http_server_t *server, unsigned drain_ms)
{
    struct timespec until;
    tether_http_stream_t *stream;

    while ((stream = next_to_stop(server)) != NULL) {
        struct MHD_Connection *resume;

        pthread_mutex_lock(&stream->lock);
        stream->gone = true;
        pthread_cond_broadcast(&stream->room);
        resume = take_suspended(stream);
        pthread_mutex_unlock(&stream->lock);
        if (resume != NULL)
            MHD_resume_connection(resume);
        drop_hold(stream);
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    tether_http_timespec_add_ms(&until, drain_ms);
    pthread_mutex_lock(&server->park_lock);
    while (server->streams != NULL &&
           pthread_cond_timedwait(&server->park_cond, &server->park_lock, &until) == 0)
        ;
    pthread_mutex_unlock(&server->park_lock);
}
