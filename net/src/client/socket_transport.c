/*
 * The plain stream-socket transport: a non-blocking descriptor whose every
 * wait is a poll() bounded by the I/O timeout and the exchange's deadline.
 * The TLS client runs mbedTLS over it; the agent's local client runs HTTP
 * over it directly.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "tether/transport.h"

uint64_t tether_socket_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tether_socket_init(tether_socket_t *s, unsigned io_timeout_ms, unsigned request_timeout_ms)
{
    memset(s, 0, sizeof(*s));
    s->fd = -1;
    s->io_timeout_ms = io_timeout_ms;
    s->deadline_ms = tether_socket_now_ms() + request_timeout_ms;
}

int tether_socket_wait(int fd, short events, uint64_t deadline_ms, unsigned max_wait_ms)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events, .revents = 0};
        uint64_t now = tether_socket_now_ms();
        uint64_t wait;
        int n;

        if (now >= deadline_ms)
            return 0;
        wait = deadline_ms - now;
        if (wait > max_wait_ms)
            wait = max_wait_ms;
        n = poll(&pfd, 1, (int)(wait > INT_MAX ? INT_MAX : wait));
        if (n > 0)
            return 1;
        if (n == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* Waits for events on s; 0 when ready, else the transport's code. */
static int socket_wait(tether_socket_t *s, short events)
{
    int ready = tether_socket_wait(s->fd, events, s->deadline_ms, s->io_timeout_ms);

    if (ready == 0) {
        s->deadline_passed = tether_socket_now_ms() >= s->deadline_ms;
        return TETHER_SOCKET_TIMEOUT;
    }
    if (ready < 0) {
        s->error_number = errno;
        return TETHER_SOCKET_POLL_FAILED;
    }
    return 0;
}

/* The code for a failed send or recv, keeping its errno. */
static int socket_failure(tether_socket_t *s)
{
    s->error_number = errno;
    return errno == EPIPE || errno == ECONNRESET ? TETHER_SOCKET_RESET : TETHER_SOCKET_FAILED;
}

int tether_socket_send(void *context, const uint8_t *buf, size_t len)
{
    tether_socket_t *s = context;

    for (;;) {
        ssize_t n;
        int ret;

        if ((ret = socket_wait(s, POLLOUT)) != 0)
            return ret;
        /* MSG_NOSIGNAL: a peer that closed early gives EPIPE, not SIGPIPE. */
        n = send(s->fd, buf, len > INT_MAX ? INT_MAX : len, MSG_NOSIGNAL);
        if (n > 0)
            return (int)n;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return socket_failure(s);
    }
}

int tether_socket_recv(void *context, uint8_t *buf, size_t len)
{
    tether_socket_t *s = context;

    for (;;) {
        ssize_t n;
        int ret;

        if ((ret = socket_wait(s, POLLIN)) != 0)
            return ret;
        n = recv(s->fd, buf, len > INT_MAX ? INT_MAX : len, 0);
        if (n >= 0)
            return (int)n;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return socket_failure(s);
    }
}

tether_transport_t tether_socket_transport(tether_socket_t *s)
{
    tether_transport_t t = {.send = tether_socket_send, .recv = tether_socket_recv, .context = s};

    return t;
}

tether_status_t tether_socket_connect_unix(tether_socket_t *s, const char *path)
{
    struct sockaddr_un addr;
    int fd, flags;

    memset(&addr, 0, sizeof(addr));
    addr.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(addr.sun_path))
        return TETHER_ERR_INVALID_ARGUMENT;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    /* A local connect completes at once or fails at once (a full listen
     * queue makes it wait for room, as a blocking connect should); the
     * socket turns non-blocking for the exchange that follows. */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
        (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        s->error_number = errno;
        if (fd >= 0)
            close(fd);
        return TETHER_ERR_NETWORK;
    }
    s->fd = fd;
    return TETHER_OK;
}

void tether_socket_close(tether_socket_t *s)
{
    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
