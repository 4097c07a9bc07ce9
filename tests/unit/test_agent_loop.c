/*
 * tether-agent run's loop (daemon.c) with poll injected: how it ends, and
 * SIGHUP during an exchange. A failed poll once ended the agent with exit
 * status 0, as if it had been asked to stop, so that its supervisor never
 * restarted it.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdbool.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon.h"

/* What the fake poll answers: -1 with these errno values in turn, the last
 * one for every later call. */
static int poll_errors[4];
static size_t poll_error_count;
static size_t poll_calls;

static int failing_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    size_t i = poll_calls < poll_error_count ? poll_calls : poll_error_count - 1;

    (void)fds;
    (void)nfds;
    (void)timeout_ms;
    poll_calls++;
    errno = poll_errors[i];
    return -1;
}

typedef struct loop_fixture {
    int signal_pipe[2]; /* stands in for the signalfd: siginfo records */
    tether_agent_t agent; /* last: its connection table is large */
} loop_fixture_t;

/* An agent with a running worker and no socket: the worker's client is
 * not set up, so an exchange fails at once without network or TPM. */
static int loop_setup(void **state)
{
    loop_fixture_t *f = calloc(1, sizeof(*f));
    tether_secure_buffer_t token;
    char why[128];

    if (f == NULL || pipe(f->signal_pipe) != 0)
        return -1;
    tether_agent_init(&f->agent);
    f->agent.signal_fd = f->signal_pipe[0];
    if (tether_secure_buffer_alloc(&f->agent.token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK ||
        tether_secure_buffer_alloc(&token, TETHER_TOKEN_MAX + 1, 1) != TETHER_OK ||
        tether_exchange_worker_start(&f->agent.worker, &f->agent.client, &f->agent.tpm,
                                     &f->agent.tpm_lock, &f->agent.state, &token, why, sizeof(why)) != TETHER_OK)
        return -1;
    poll_calls = 0;
    *state = f;
    return 0;
}

static int loop_teardown(void **state)
{
    loop_fixture_t *f = *state;

    tether_agent_free(&f->agent); /* closes signal_pipe[0] */
    close(f->signal_pipe[1]);
    free(f);
    return 0;
}

static void send_signal(loop_fixture_t *f, uint32_t signo)
{
    struct signalfd_siginfo si;

    memset(&si, 0, sizeof(si));
    si.ssi_signo = signo;
    assert_int_equal(write(f->signal_pipe[1], &si, sizeof(si)), (ssize_t)sizeof(si));
}

/* Runs the loop with a poll failing with errors[0..count) in turn; the
 * loop's exit code. */
static int loop_with_poll_errors(loop_fixture_t *f, const int *errors, size_t count)
{
    memcpy(poll_errors, errors, count * sizeof(*errors));
    poll_error_count = count;
    f->agent.poll = failing_poll;
    return tether_agent_loop(&f->agent);
}

static void failed_poll_exits_1(void **state)
{
    static const int errors[] = {ENOMEM};

    assert_int_equal(loop_with_poll_errors(*state, errors, 1), 1);
    assert_int_equal(poll_calls, 1);
}

static void interrupted_poll_is_retried(void **state)
{
    static const int errors[] = {EINTR, EINTR, EBADF};

    assert_int_equal(loop_with_poll_errors(*state, errors, 3), 1);
    assert_int_equal(poll_calls, 3);
}

static void sigterm_exits_0(void **state)
{
    loop_fixture_t *f = *state;

    send_signal(f, SIGTERM);
    assert_int_equal(tether_agent_loop(&f->agent), 0);
}

/* poll(2), watching the agent: at the first poll after the first result
 * came (the failure's reason is set), notes whether an exchange runs and
 * the failure count, then asks the loop to stop. */
static loop_fixture_t *watched;
static bool seen_after_result, exchanging_after_result;
static unsigned failures_after_result;

static int watching_poll(struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
    if (!seen_after_result && watched->agent.last_error[0] != '\0') {
        seen_after_result = true;
        exchanging_after_result = watched->agent.exchanging;
        failures_after_result = watched->agent.failures;
        send_signal(watched, SIGTERM);
    }
    return poll(fds, nfds, timeout_ms);
}

/* SIGHUP while an exchange runs: once it has failed, the next one starts at
 * once with the failure count reset, rather than after a backoff (what a
 * SIGHUP applied at once would get, the result overriding it). */
static void sighup_during_an_exchange_asks_again_after_it(void **state)
{
    loop_fixture_t *f = *state;

    watched = f;
    seen_after_result = exchanging_after_result = false;
    failures_after_result = 99;
    send_signal(f, SIGHUP); /* read after the first exchange has started */
    f->agent.poll = watching_poll;
    assert_int_equal(tether_agent_loop(&f->agent), 0);
    assert_true(seen_after_result);
    assert_true(exchanging_after_result);
    assert_int_equal(failures_after_result, 0);
    assert_false(f->agent.refresh_after_exchange);
}

/* ---- the config file (tether_agent_config_parse) ------------------------ */

static tether_status_t parse_config(const char *text, tether_local_acl_t *acl, size_t *bad_line)
{
    memset(acl, 0, sizeof(*acl));
    return tether_agent_config_parse(text, strlen(text), acl, bad_line);
}

static void config_lists_uids_and_gids(void **state)
{
    tether_local_acl_t acl;
    size_t bad_line = 99;

    (void)state;
    assert_int_equal(parse_config("# who may ask\n\n  allow_uid = 1000\nallow_gid = 1001\n"
                                  "\tallow_uid = 0\n",
                                  &acl, &bad_line),
                     TETHER_OK);
    assert_int_equal(bad_line, 0);
    assert_int_equal(acl.uid_count, 2);
    assert_int_equal(acl.uids[0], 1000);
    assert_int_equal(acl.uids[1], 0);
    assert_int_equal(acl.gid_count, 1);
    assert_int_equal(acl.gids[0], 1001);
}

/* Asserts text is refused at line; returns how many ids it listed before. */
static size_t assert_refused_at(const char *text, size_t line)
{
    tether_local_acl_t acl;
    size_t bad_line = 0;

    assert_int_equal(parse_config(text, &acl, &bad_line), TETHER_ERR_PARSE);
    assert_int_equal(bad_line, line);
    return acl.uid_count + acl.gid_count;
}

static void config_refuses_the_first_bad_line(void **state)
{
    (void)state;
    assert_int_equal(assert_refused_at("allow_uid = 1000\nallow_user = 7\nallow_uid = x\n", 2), 1);
    assert_refused_at("allow_uid = 1000 1001\n", 1);
    assert_refused_at("allow_gid = 4294967295\n", 1);
    assert_refused_at("allow_gid = 12x\n", 1);
}

/* strtoul takes a sign: "-18446744073709551615" wrapped around to uid 1,
 * and "+0" to root. An id is decimal digits only. */
static void config_refuses_signed_ids(void **state)
{
    (void)state;
    assert_int_equal(assert_refused_at("allow_uid = -18446744073709551615\n", 1), 0);
    assert_int_equal(assert_refused_at("allow_gid = +0\n", 1), 0);
}

/* Blank lines count as lines (strtok_r skipped them, naming a later line
 * than the bad one); a NUL byte ended the text, so the lines after it were
 * never read; a line longer than any valid one is refused whole. */
static void config_counts_every_line_and_refuses_nul(void **state)
{
    static const char with_nul[] = "allow_uid = 1000\nallow_uid = 1\0001\nallow_uid = x\n";
    tether_local_acl_t acl;
    size_t bad_line = 0;
    char long_line[200];

    (void)state;
    assert_int_equal(assert_refused_at("allow_uid = 1000\n\n\nallow_uid = x\n", 4), 1);
    memset(&acl, 0, sizeof(acl));
    assert_int_equal(tether_agent_config_parse(with_nul, sizeof(with_nul) - 1, &acl, &bad_line),
                     TETHER_ERR_PARSE);
    assert_int_equal(bad_line, 2);
    memset(long_line, ' ', sizeof(long_line) - 1);
    long_line[sizeof(long_line) - 1] = '\0';
    memcpy(long_line + 150, "allow_uid = 7", 13);
    assert_int_equal(assert_refused_at(long_line, 1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(failed_poll_exits_1, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(interrupted_poll_is_retried, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(sigterm_exits_0, loop_setup, loop_teardown),
        cmocka_unit_test_setup_teardown(sighup_during_an_exchange_asks_again_after_it, loop_setup,
                                        loop_teardown),
        cmocka_unit_test(config_lists_uids_and_gids),
        cmocka_unit_test(config_refuses_the_first_bad_line),
        cmocka_unit_test(config_refuses_signed_ids),
        cmocka_unit_test(config_counts_every_line_and_refuses_nul),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
