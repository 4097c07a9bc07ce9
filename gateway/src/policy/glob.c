#include "tether/gate/policy.h"

/* The classic single-backtrack matcher: on a mismatch after a '*', the star
 * takes one more character and matching resumes. Only the last star is ever
 * retried, so the work is at most the glob's length times the name's: a
 * hostile model name cannot make it exponential, as recursive matchers (and
 * some fnmatch implementations) can be. */
bool tether_gate_glob_match(const char *glob, const char *name)
{
    const char *star = NULL;
    const char *resume = NULL;
    bool matched = true;

    if (glob == NULL || name == NULL)
        return false;
    while (*name != '\0') {
        if (*glob == '*') {
            star = glob++;
            resume = name;
        } else if (*glob != '\0' && (*glob == '?' || *glob == *name)) {
            glob++;
            name++;
        } else if (star != NULL) {
            glob = star + 1;
            name = ++resume;
        } else {
            matched = false;
            break;
        }
    }
    while (matched && *glob == '*')
        glob++;
    return matched && *glob == '\0';
}
