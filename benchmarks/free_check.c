/* free_check: cost of memhound's free-path question "was this pointer sampled?"
 *
 * Built straight from the engine's Python-free sources (mh_live.c, mh_arena.c),
 * no Python.h:
 *
 *     make -C benchmarks free_check && benchmarks/free_check
 *
 * Measured, each as the median over several runs of a timed loop (ns per call,
 * loop and pointer load included; the "loop only" row is that floor):
 *
 *   maybe/miss   mh_live_maybe() on pointers that are not in the table, the
 *                case of almost every free;
 *   maybe/hit    mh_live_maybe() on pointers that are in the table;
 *   check/miss   what a free of an unsampled pointer costs memhound in full:
 *                mh_live_maybe(), and when the filter says "maybe" (a false
 *                positive), the lock, a probe of the table that misses, unlock;
 *   insert       lock, mh_live_insert_locked() of a fresh pointer, unlock;
 *   remove       lock, mh_live_remove_locked() of a pointer present, unlock;
 *
 * with 0, 1 000 and 100 000 live entries in the table (or the sizes given to
 * --live). The filter's false positive rate for each table size is printed too.
 *
 * Pointers are 16-byte aligned addresses drawn at random from a 1 GiB range, as
 * heap blocks are; table members and non-members never coincide.
 *
 *     free_check [--runs N] [--calls N] [--live N,N,...] [--json]
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mh_arena.h"
#include "mh_live.h"

#define QUERIES (1u << 20) /* Distinct pointers per query pattern. */
#define BATCH 100u         /* Pointers inserted then removed per insert/remove round. */
#define MAX_RUNS 101
#define MAX_SIZES 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t sink;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A heap-like address: 1 GiB above a typical mmap base, 16-byte aligned. Table
 * members have bit 4 clear, non-members have it set, so the two never meet. */
static uintptr_t heap_ptr(int member)
{
    uint64_t off = (rng() % ((uint64_t)1 << 30)) & ~(uint64_t)31;
    return (uintptr_t)(0x7f3a00000000ull + off + (member ? 0 : 16));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* ---- the timed loops: each returns ns per call ------------------------- */

static double loop_only(const uintptr_t *q, size_t calls)
{
    uint64_t acc = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        uintptr_t p = q[i & (QUERIES - 1)];
        __asm__ volatile("" : "+r"(p)); /* Keep the load; do nothing with it. */
        acc += p & 1;
    }
    uint64_t t1 = now_ns();
    sink += acc;
    return (double)(t1 - t0) / (double)calls;
}

static double time_maybe(const uintptr_t *q, size_t calls, uint64_t *positives)
{
    uint64_t hits = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        hits += (uint64_t)mh_live_maybe(q[i & (QUERIES - 1)]);
    }
    uint64_t t1 = now_ns();
    sink += hits;
    if (positives) {
        *positives = hits;
    }
    return (double)(t1 - t0) / (double)calls;
}

/* The free path of an unsampled pointer, as the hooks run it: the filter, and on
 * a "maybe" the lock and a probe. */
static double time_check(mh_live_t *t, const uintptr_t *q, size_t calls)
{
    uint64_t found = 0;
    mh_live_entry_t out;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        uintptr_t p = q[i & (QUERIES - 1)];
        if (mh_live_maybe(p)) {
            pthread_mutex_lock(&lock);
            found += (uint64_t)mh_live_remove_locked(t, p, &out);
            pthread_mutex_unlock(&lock);
        }
    }
    uint64_t t1 = now_ns();
    sink += found;
    if (found != 0) {
        fprintf(stderr, "free_check: a non-member was found in the table\n");
        exit(1);
    }
    return (double)(t1 - t0) / (double)calls;
}

static double time_lock_only(size_t calls)
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < calls; i++) {
        pthread_mutex_lock(&lock);
        __asm__ volatile("" ::: "memory");
        pthread_mutex_unlock(&lock);
    }
    uint64_t t1 = now_ns();
    return (double)(t1 - t0) / (double)calls;
}

static void entry_for(mh_live_entry_t *e, uintptr_t p)
{
    memset(e, 0, sizeof *e);
    e->ptr = p;
    e->size = 64;
    e->weight = 1.0f;
    e->stack = 1;
}

/* Insert BATCH fresh pointers, then remove them, `rounds` times; the table is
 * back at its starting size after every round. */
static void time_insert_remove(mh_live_t *t, const uintptr_t *fresh, int rounds,
                               double *ins_ns, double *rem_ns)
{
    uint64_t ins = 0, rem = 0;
    mh_live_entry_t e, old;
    for (int r = 0; r < rounds; r++) {
        const uintptr_t *f = fresh + (size_t)(r % 16) * BATCH;
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < BATCH; i++) {
            entry_for(&e, f[i]);
            pthread_mutex_lock(&lock);
            int rc = mh_live_insert_locked(t, &e, &old);
            pthread_mutex_unlock(&lock);
            if (rc != 0) {
                fprintf(stderr, "free_check: insert returned %d\n", rc);
                exit(1);
            }
        }
        uint64_t t1 = now_ns();
        for (unsigned i = 0; i < BATCH; i++) {
            pthread_mutex_lock(&lock);
            int rc = mh_live_remove_locked(t, f[i], &old);
            pthread_mutex_unlock(&lock);
            if (rc != 1) {
                fprintf(stderr, "free_check: remove returned %d\n", rc);
                exit(1);
            }
        }
        uint64_t t2 = now_ns();
        ins += t1 - t0;
        rem += t2 - t1;
    }
    *ins_ns = (double)ins / ((double)rounds * BATCH);
    *rem_ns = (double)rem / ((double)rounds * BATCH);
}

/* ---- driver ---------------------------------------------------------------- */

typedef struct {
    size_t live;
    double fp_rate;      /* Share of non-member pointers the filter calls "maybe". */
    double filter_fill;  /* Share of filter counters that are non-zero. */
    size_t counters;     /* Filter size it had (the filter grows with the table). */
    double loop, maybe_miss, maybe_hit, check_miss, lock_only, insert, remove;
} result_t;

static double filter_fill(void)
{
    const mh_live_filter_t *f = atomic_load_explicit(&mh_live_filter, memory_order_acquire);
    size_t n = 0, total = (size_t)1 << f->bits;
    for (size_t i = 0; i < total; i++) {
        n += atomic_load_explicit(&f->counters[i], memory_order_relaxed) != 0;
    }
    return (double)n / (double)total;
}

static void run_size(size_t live, int runs, size_t calls, result_t *res)
{
    mh_live_t t = {0};
    uintptr_t *members = malloc((live ? live : 1) * sizeof *members);
    uintptr_t *q_miss = malloc(QUERIES * sizeof *q_miss);
    uintptr_t *q_hit = malloc(QUERIES * sizeof *q_hit);
    uintptr_t *fresh = malloc(16 * BATCH * sizeof *fresh);
    if (!members || !q_miss || !q_hit || !fresh) {
        fprintf(stderr, "free_check: out of memory\n");
        exit(1);
    }
    mh_live_entry_t e, old;
    for (size_t i = 0; i < live; i++) {
        /* Draw until fresh: a duplicate would replace, not add. */
        for (;;) {
            members[i] = heap_ptr(1);
            entry_for(&e, members[i]);
            int rc = mh_live_insert_locked(&t, &e, &old);
            if (rc == 0) {
                break;
            }
            if (rc < 0) {
                fprintf(stderr, "free_check: insert failed\n");
                exit(1);
            }
            /* rc == 1: already there (the old entry was replaced); draw again. */
        }
    }
    for (size_t i = 0; i < QUERIES; i++) {
        q_miss[i] = heap_ptr(0);
        q_hit[i] = live ? members[rng() % live] : 0;
    }
    /* Fresh pointers for insert/remove: members-style, not already in the table. */
    for (size_t i = 0; i < 16 * BATCH; i++) {
        for (;;) {
            uintptr_t p = heap_ptr(1);
            int dup = 0;
            if (mh_live_remove_locked(&t, p, &old)) {
                mh_live_insert_locked(&t, &old, &e); /* It was a member: put it back. */
                dup = 1;
            }
            for (size_t j = 0; j < i && !dup; j++) {
                dup = fresh[j] == p;
            }
            if (!dup) {
                fresh[i] = p;
                break;
            }
        }
    }

    double v_loop[MAX_RUNS], v_mm[MAX_RUNS], v_mh[MAX_RUNS], v_cm[MAX_RUNS], v_lk[MAX_RUNS],
        v_in[MAX_RUNS], v_rm[MAX_RUNS];
    uint64_t positives = 0;
    int ir_rounds = (int)(calls / (4 * BATCH));
    if (ir_rounds < 16) {
        ir_rounds = 16;
    }
    /* One untimed pass warms caches and lets the table reach its steady size. */
    time_maybe(q_miss, QUERIES, NULL);
    time_insert_remove(&t, fresh, 16, &v_in[0], &v_rm[0]);
    for (int r = 0; r < runs; r++) {
        v_loop[r] = loop_only(q_miss, calls);
        v_mm[r] = time_maybe(q_miss, calls, &positives);
        v_mh[r] = live ? time_maybe(q_hit, calls, NULL) : 0.0;
        v_cm[r] = time_check(&t, q_miss, calls);
        v_lk[r] = time_lock_only(calls / 4);
        time_insert_remove(&t, fresh, ir_rounds, &v_in[r], &v_rm[r]);
    }
    res->live = live;
    res->fp_rate = (double)positives / (double)calls;
    res->filter_fill = filter_fill();
    res->counters = (size_t)1 << atomic_load_explicit(&mh_live_filter, memory_order_acquire)->bits;
    res->loop = median(v_loop, runs);
    res->maybe_miss = median(v_mm, runs);
    res->maybe_hit = live ? median(v_mh, runs) : -1.0;
    res->check_miss = median(v_cm, runs);
    res->lock_only = median(v_lk, runs);
    res->insert = median(v_in, runs);
    res->remove = median(v_rm, runs);

    mh_live_clear_locked(&t);
    free(members);
    free(q_miss);
    free(q_hit);
    free(fresh);
}

static void cell(double v)
{
    if (v < 0) {
        printf(" n/a |");
    } else {
        printf(" %.2f |", v);
    }
}

int main(int argc, char **argv)
{
    int runs = 7;
    size_t calls = 8u << 20;
    int json = 0;
    size_t sizes[MAX_SIZES] = {0, 1000, 100000};
    int nsizes = 3;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--calls") == 0 && i + 1 < argc) {
            calls = (size_t)strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--live") == 0 && i + 1 < argc) {
            nsizes = 0;
            for (char *p = argv[++i]; *p != '\0' && nsizes < MAX_SIZES;) {
                char *end;
                sizes[nsizes++] = (size_t)strtoull(p, &end, 10);
                if (end == p || sizes[nsizes - 1] > 50000000u) {
                    fprintf(stderr, "free_check: --live wants sizes up to 50000000, "
                                    "comma-separated\n");
                    return 2;
                }
                p = *end == ',' ? end + 1 : end;
            }
        } else if (strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else {
            fprintf(stderr, "usage: free_check [--runs N] [--calls N] [--live N,N,...] [--json]\n");
            return 2;
        }
    }
    if (runs < 1 || runs > MAX_RUNS || calls < 1024) {
        fprintf(stderr, "free_check: --runs must be 1..%d and --calls >= 1024\n", MAX_RUNS);
        return 2;
    }
    result_t res[MAX_SIZES];
    for (int i = 0; i < nsizes; i++) {
        run_size(sizes[i], runs, calls, &res[i]);
    }
    if (json) {
        printf("{\"runs\": %d, \"calls\": %zu, \"results\": [", runs, calls);
        for (int i = 0; i < nsizes; i++) {
            result_t *r = &res[i];
            printf("%s{\"live\": %zu, \"filter_counters\": %zu, \"fp_rate\": %.6f, \"filter_fill\": %.6f, "
                   "\"loop_ns\": %.3f, \"maybe_miss_ns\": %.3f, \"maybe_hit_ns\": %.3f, "
                   "\"check_miss_ns\": %.3f, \"lock_unlock_ns\": %.3f, \"insert_ns\": %.3f, "
                   "\"remove_ns\": %.3f}",
                   i ? ", " : "", r->live, r->counters, r->fp_rate, r->filter_fill, r->loop, r->maybe_miss,
                   r->maybe_hit < 0 ? 0.0 : r->maybe_hit, r->check_miss, r->lock_only,
                   r->insert, r->remove);
        }
        printf("]}\n");
        return 0;
    }
    printf("free_check: median of %d runs, %zu calls each; ns per call\n\n", runs, calls);
    printf("| live entries | filter counters | filter false-positive rate | loop only | maybe, miss "
           "| maybe, hit | free check, miss | lock+unlock | insert (locked) | remove (locked) |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int i = 0; i < nsizes; i++) {
        result_t *r = &res[i];
        printf("| %zu | %zu | %.1f%% |", r->live, r->counters, 100.0 * r->fp_rate);
        cell(r->loop);
        cell(r->maybe_miss);
        cell(r->maybe_hit);
        cell(r->check_miss);
        cell(r->lock_only);
        cell(r->insert);
        cell(r->remove);
        printf("\n");
    }
    return 0;
}
