#include "http_tls_input.h"

#include <limits.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

void tether_http_tls_input_init(tether_http_tls_input_t *input, int fd)
{
    input->fd = fd;
    input->start = 0;
    input->end = 0;
}

ssize_t tether_http_tls_input_pull(void *arg, void *data, size_t size)
{
    tether_http_tls_input_t *input = arg;
    size_t held = input->end - input->start;
    ssize_t got;

    if (held == 0) {
        if (size >= sizeof(input->buffer))
            return recv(input->fd, data, size, 0);
        if ((got = recv(input->fd, input->buffer, sizeof(input->buffer), 0)) <= 0)
            return got;
        input->start = 0;
        input->end = (size_t)got;
        held = (size_t)got;
    }
    if (size > held)
        size = held;
    memcpy(data, input->buffer + input->start, size);
    input->start += size;
    if (input->start == input->end) {
        input->start = 0;
        input->end = 0;
    }
    return (ssize_t)size;
}

int tether_http_tls_input_pull_timeout(void *arg, unsigned int ms)
{
    tether_http_tls_input_t *input = arg;
    struct pollfd pfd = {.fd = input->fd, .events = POLLIN, .revents = 0};

    if (input->end > input->start)
        return 1;
    /* GnuTLS's indefinite and default timeouts are above INT_MAX: wait. */
    return poll(&pfd, 1, ms > (unsigned int)INT_MAX ? -1 : (int)ms);
}
