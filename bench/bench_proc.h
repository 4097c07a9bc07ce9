/*
 * Another process's resource use, read from /proc, for the benchmarks that
 * measure a server they did not start (fleetd, tether-gate). Linux only.
 */
#ifndef TETHER_BENCH_PROC_H
#define TETHER_BENCH_PROC_H

#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* utime + stime of pid in seconds, from /proc/PID/stat (fields 14 and 15,
 * counted after the parenthesised command name, which may hold spaces).
 * Returns 0, or -1 if the process is gone or the file cannot be parsed. */
static inline int bench_proc_cpu_seconds(pid_t pid, double *seconds)
{
    char path[64], text[1024], *p;
    unsigned long long utime = 0, stime = 0;
    size_t n;
    FILE *f;

    *seconds = 0;
    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    if ((p = strrchr(text, ')')) == NULL ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
            2)
        return -1;
    *seconds = (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
    return 0;
}

/* Resident set size of pid now and at its peak, in KiB, from
 * /proc/PID/status (VmRSS, VmHWM). Returns 0, or -1 as above. */
static inline int bench_proc_rss_kib(pid_t pid, unsigned long *now, unsigned long *peak)
{
    char path[64], line[256];
    int found = 0;
    FILE *f;

    *now = 0;
    *peak = 0;
    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    if ((f = fopen(path, "r")) == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lu kB", now) == 1 || sscanf(line, "VmHWM: %lu kB", peak) == 1)
            found++;
    }
    fclose(f);
    return found == 2 ? 0 : -1;
}

#endif
