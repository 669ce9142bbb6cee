/* lg_stats.c: clocks, percentiles, and what /proc says about CPU, memory and sockets. Every run
 * records the CPU the rest of the machine used, because this machine is shared: a run where
 * others were busy is repeated by bench/run.mjs. */
#include "lg.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void lg_put_digits(char *p, int width, uint64_t v)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

uint64_t lg_get_digits(const char *p, int width)
{
    uint64_t v = 0;
    for (int i = 0; i < width && p[i] >= '0' && p[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(p[i] - '0');
    return v;
}

void lg_mark_measuring(void)
{
    fputs("loadgen: measuring\n", stderr);
    fflush(stderr);
}

void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("loadgen: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *lg_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        lg_die("out of memory (%zu bytes)", n);
    return p;
}

void *lg_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        lg_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *lg_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        lg_die("out of memory (%zu bytes)", n);
    return q;
}

/* Reads a small /proc file into buf (NUL-terminated); returns its length or -1. */
static ssize_t read_small(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    fclose(f);
    buf[n] = 0;
    return (ssize_t)n;
}

static uint64_t pid_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    /* comm may hold spaces and parentheses: fields are counted from the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long utime = 0, stime = 0;
    /* After ')': state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15). */
    if (sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
        2)
        return 0;
    return utime + stime;
}

static void find_ksoftirqd(lg_cpu_snap_t *s)
{
    s->nksoft = 0;
    DIR *d = opendir("/proc");
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) && s->nksoft < 8) {
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        char path[300], comm[64];
        snprintf(path, sizeof path, "/proc/%s/comm", e->d_name);
        if (read_small(path, comm, sizeof comm) > 0 && strncmp(comm, "ksoftirqd/", 10) == 0)
            s->ksoft[s->nksoft++] = (pid_t)atoi(e->d_name);
    }
    closedir(d);
}

void lg_cpu_snap(lg_cpu_snap_t *s, const pid_t *pids, int npids)
{
    memset(s, 0, sizeof *s);
    char buf[4096];
    if (read_small("/proc/stat", buf, sizeof buf) > 0) {
        unsigned long long v[10] = {0};
        sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
               &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
        /* user nice system idle iowait irq softirq steal guest guest_nice; guest time is
         * already inside user. */
        s->busy = v[0] + v[1] + v[2] + v[5] + v[6];
        s->softirq_irq = v[5] + v[6];
        s->steal = v[7];
    }
    s->npids = npids > LG_MAX_PIDS ? LG_MAX_PIDS : npids;
    for (int i = 0; i < s->npids; i++) {
        s->pids[i] = pids[i];
        s->ticks[i] = pids[i] > 0 ? pid_ticks(pids[i]) : 0;
    }
    find_ksoftirqd(s);
    for (int i = 0; i < s->nksoft; i++)
        s->ksoft_ticks[i] = pid_ticks(s->ksoft[i]);
    s->t_ns = lg_now_ns();
}

double lg_cpu_print(FILE *f, const lg_cpu_snap_t *a, const lg_cpu_snap_t *b, int nserver)
{
    double wall = (double)(b->t_ns - a->t_ns) / 1e9;
    double hz = (double)sysconf(_SC_CLK_TCK);
    if (wall <= 0)
        wall = 1e-9;
    double k = 1.0 / hz / wall;
    uint64_t server = 0, gen = 0, ksoft = 0;
    for (int i = 0; i < a->npids && i < b->npids; i++) {
        uint64_t d = b->ticks[i] >= a->ticks[i] ? b->ticks[i] - a->ticks[i] : 0;
        if (i < nserver)
            server += d;
        else
            gen += d;
    }
    for (int i = 0; i < b->nksoft; i++)
        for (int j = 0; j < a->nksoft; j++)
            if (a->ksoft[j] == b->ksoft[i] && b->ksoft_ticks[i] >= a->ksoft_ticks[j])
                ksoft += b->ksoft_ticks[i] - a->ksoft_ticks[j];
    double busy = (double)(b->busy - a->busy) * k;
    double net = (double)(b->softirq_irq - a->softirq_irq + ksoft) * k;
    double others = busy - (double)(server + gen) * k - net;
    if (others < 0)
        others = 0;
    fprintf(f,
            "\"cpu\":{\"wall_s\":%.3f,\"machine\":%.3f,\"server\":%.3f,\"gen\":%.3f,\"net\":%.3f,"
            "\"steal\":%.3f,\"others\":%.3f}",
            wall, busy, (double)server * k, (double)gen * k, net, (double)(b->steal - a->steal) * k,
            others);
    return others;
}

double lg_cpu_pid_cores(const lg_cpu_snap_t *a, const lg_cpu_snap_t *b, int i)
{
    if (i < 0 || i >= a->npids || i >= b->npids || a->pids[i] <= 0 || a->pids[i] != b->pids[i] ||
        b->ticks[i] < a->ticks[i] || b->t_ns <= a->t_ns)
        return 0;
    double wall = (double)(b->t_ns - a->t_ns) / 1e9;
    return (double)(b->ticks[i] - a->ticks[i]) / (double)sysconf(_SC_CLK_TCK) / wall;
}

static uint64_t status_kb(pid_t pid, const char *field)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, field);
    if (!p)
        return 0;
    return strtoull(p + strlen(field), NULL, 10);
}

uint64_t lg_rss_bytes(pid_t pid)
{
    return status_kb(pid, "VmRSS:") * 1024;
}

long lg_fd_limit(pid_t pid)
{
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    if (read_small(path, buf, sizeof buf) <= 0)
        return 0;
    const char *p = strstr(buf, "Max open files");
    if (!p)
        return 0;
    return strtol(p + strlen("Max open files"), NULL, 10);
}

uint64_t lg_socket_slab_bytes(void)
{
    static const char *const caches[] = {
        "TCP", "sock_inode_cache", "eventpoll_epi", "eventpoll_pwq", "filp", NULL};
    FILE *f = fopen("/proc/slabinfo", "re");
    if (!f)
        return 0;
    char line[512];
    uint64_t total = 0;
    while (fgets(line, sizeof line, f)) {
        char name[64];
        unsigned long active, num, size;
        if (sscanf(line, "%63s %lu %lu %lu", name, &active, &num, &size) != 4)
            continue;
        for (int i = 0; caches[i]; i++)
            if (strcmp(name, caches[i]) == 0)
                total += (uint64_t)active * size;
    }
    fclose(f);
    return total;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted sample. */
static uint64_t pct(const uint64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t r = (size_t)ceil(p / 100.0 * (double)n);
    if (r < 1)
        r = 1;
    if (r > n)
        r = n;
    return v[r - 1];
}

void lg_print_percentiles(FILE *f, const char *name, uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)v[i];
    fprintf(f,
            "\"%s\":{\"n\":%zu,\"mean_us\":%.1f,\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f}",
            name, n, n ? sum / (double)n / 1e3 : 0.0, (double)pct(v, n, 50) / 1e3,
            (double)pct(v, n, 90) / 1e3, (double)pct(v, n, 99) / 1e3, (double)pct(v, n, 99.9) / 1e3,
            n ? (double)v[n - 1] / 1e3 : 0.0);
}

int lg_write_cdf(const char *path, const uint64_t *sorted, size_t n)
{
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fprintf(f, "# quantile latency_us (n=%zu)\n", n);
    if (n > 0) {
        /* q = 1 - 10^(-5 j / 500): as many points between 99% and 99.9% as between 0 and 90%. */
        size_t last = (size_t)-1;
        for (int j = 0; j <= 500; j++) {
            double q = 1.0 - pow(10.0, -5.0 * j / 500.0);
            size_t r = (size_t)ceil(q * (double)n);
            if (r < 1)
                r = 1;
            if (r > n)
                break;
            if (r == last)
                continue;
            last = r;
            fprintf(f, "%.7f %.2f\n", q, (double)sorted[r - 1] / 1e3);
        }
        fprintf(f, "%.7f %.2f\n", 1.0 - 1.0 / (double)(n + 1), (double)sorted[n - 1] / 1e3);
    }
    return fclose(f) == 0 ? 0 : -errno;
}
