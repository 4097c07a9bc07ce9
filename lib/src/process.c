#include "tether/process.h"

#include <sys/prctl.h>
#include <sys/resource.h>

tether_status_t tether_process_protect(void)
{
    struct rlimit none = {0, 0};

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &none) != 0)
        return TETHER_ERR_IO;
    return TETHER_OK;
}

void tether_process_block_stop_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGTERM);
    sigaddset(stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, stop, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int tether_process_wait_stop(const sigset_t *stop)
{
    int sig = 0;

    while (sigwait(stop, &sig) != 0)
        ;
    return sig;
}

const char *tether_process_signal_name(int sig)
{
    return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
}
