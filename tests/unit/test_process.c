/* lib/process: the protection every tether program gives its own process,
 * and the servers' stop on SIGTERM or SIGINT. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "tether/process.h"

static void protect_turns_off_dumps_and_ptrace(void **state)
{
    struct rlimit core;

    (void)state;
    assert_int_equal(tether_process_protect(), TETHER_OK);
    assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 0);
    assert_int_equal(getrlimit(RLIMIT_CORE, &core), 0);
    assert_int_equal(core.rlim_cur, 0);
    assert_int_equal(core.rlim_max, 0);
}

/* A stop signal sent to the process is waited for, not delivered to a
 * handler (it would end the process here), and SIGPIPE no longer kills. */
static void stop_signals_are_waited_for(void **state)
{
    sigset_t stop, blocked;
    struct sigaction pipe_action;

    (void)state;
    tether_process_block_stop_signals(&stop);
    assert_int_equal(sigismember(&stop, SIGTERM), 1);
    assert_int_equal(sigismember(&stop, SIGINT), 1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &blocked), 0);
    assert_int_equal(sigismember(&blocked, SIGTERM), 1);
    assert_int_equal(sigismember(&blocked, SIGINT), 1);
    assert_int_equal(sigaction(SIGPIPE, NULL, &pipe_action), 0);
    assert_true(pipe_action.sa_handler == SIG_IGN);

    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(tether_process_wait_stop(&stop), SIGINT);
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(tether_process_wait_stop(&stop), SIGTERM);
}

static void signal_names(void **state)
{
    (void)state;
    assert_string_equal(tether_process_signal_name(SIGTERM), "SIGTERM");
    assert_string_equal(tether_process_signal_name(SIGINT), "SIGINT");
    assert_string_equal(tether_process_signal_name(SIGHUP), "a signal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(protect_turns_off_dumps_and_ptrace),
        cmocka_unit_test(stop_signals_are_waited_for),
        cmocka_unit_test(signal_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
