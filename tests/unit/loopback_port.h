/*
 * What the unit tests that start a real server on loopback share: a TCP
 * port free on 127.0.0.1 (bound, read, released; another process may take
 * it in between, which these tests accept).
 */
#ifndef TETHER_TEST_LOOPBACK_PORT_H
#define TETHER_TEST_LOOPBACK_PORT_H

#include <stdint.h>

/* A free port on 127.0.0.1; a cmocka failure when none can be had. */
uint16_t loopback_port_free(void);

#endif
