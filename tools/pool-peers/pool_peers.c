/*
 * The media frameworks' frame pools, measured with the protocols of `ksalloc bench`, so that
 * tools/pool-peers/run.sh can set them next to ks-alloc's figures from the same machine.
 *
 *   pool_peers [FRAME_SIZE [FRAMES [HANDOFF_SAMPLES]]]      (defaults 4096 64 2000)
 *
 * Prints one JSON document: {"frame_size":N,"frames":N,"results":[...]} with
 *   gst_acquire_release    GstBufferPool (GStreamer core), min = max = FRAMES buffers:
 *                          gst_buffer_pool_acquire_buffer + gst_buffer_unref, ns per pair
 *   ffmpeg_get_unref       AVBufferPool (libavutil): av_buffer_pool_get + av_buffer_unref
 *   mutex_array_single     baseline: a pthread mutex around an array of FRAMES buffers,
 *                          one pop + push (the C counterpart of ksalloc's mutex_vec_single)
 *   gst_handoff            wake latency from gst_buffer_unref of the pool's only buffer to a
 *                          thread blocked in gst_buffer_pool_acquire_buffer resuming with it
 *   pthread_cond_handoff   baseline: the same hand-off through a pthread mutex + condvar
 * The two hand-off rows take turns hand-off by hand-off, as the rows of ksalloc bench do:
 * the waiter says it is about to wait, the freer sleeps 50 us so that it really sleeps,
 * stamps the clock, releases, and the waiter measures from that stamp when it resumes.
 * FFmpeg's pool has no hand-off row: av_buffer_pool_get never waits (it allocates a new
 * buffer when none is free).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gst/gst.h>
#include <libavutil/avutil.h>
#include <libavutil/buffer.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "pool_peers: %s\n", what);
    exit(2);
}

/* Keeps the compiler from dropping a value (the counterpart of Rust's black_box). */
static void keep(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---- per-operation rows: batches of 10 000 until 300 ms have passed, as ksalloc bench ---- */

typedef int (*cycle_fn)(void *);

static double per_op(cycle_fn op, void *arg) {
    const uint64_t span = 300u * 1000u * 1000u;
    for (int i = 0; i < 10000; i++)
        if (!op(arg)) die("a single-thread cycle found no free buffer");
    uint64_t start = now_ns(), n = 0;
    while (now_ns() - start < span) {
        for (int i = 0; i < 10000; i++)
            if (!op(arg)) die("a single-thread cycle found no free buffer");
        n += 10000;
    }
    return (double)(now_ns() - start) / (double)n;
}

static GstBufferPool *gst_pool(unsigned size, unsigned frames) {
    GstBufferPool *pool = gst_buffer_pool_new();
    GstStructure *config = gst_buffer_pool_get_config(pool);
    gst_buffer_pool_config_set_params(config, NULL, size, frames, frames);
    if (!gst_buffer_pool_set_config(pool, config)) die("gst_buffer_pool_set_config refused");
    if (!gst_buffer_pool_set_active(pool, TRUE)) die("gst_buffer_pool_set_active failed");
    return pool;
}

static int gst_cycle(void *arg) {
    GstBuffer *b = NULL;
    if (gst_buffer_pool_acquire_buffer((GstBufferPool *)arg, &b, NULL) != GST_FLOW_OK) return 0;
    keep(b);
    gst_buffer_unref(b);
    return 1;
}

static int ffmpeg_cycle(void *arg) {
    AVBufferRef *b = av_buffer_pool_get((AVBufferPool *)arg);
    if (!b) return 0;
    keep(b->data);
    av_buffer_unref(&b);
    return 1;
}

struct mutex_array {
    pthread_mutex_t lock;
    void **free;
    unsigned len;
};

static int mutex_array_cycle(void *arg) {
    struct mutex_array *p = arg;
    pthread_mutex_lock(&p->lock);
    void *b = p->len ? p->free[--p->len] : NULL;
    pthread_mutex_unlock(&p->lock);
    if (!b) return 0;
    keep(b);
    pthread_mutex_lock(&p->lock);
    p->free[p->len++] = b;
    pthread_mutex_unlock(&p->lock);
    return 1;
}

/* ---- hand-off rows ---- */

static _Atomic uint64_t stamp; /* the freer's clock just before the release */

/* Freer: waits 50 us after the waiter said it would wait, so that it is asleep. */
static void let_sleep(void) {
    struct timespec d = {0, 50 * 1000};
    while (nanosleep(&d, &d) == -1 && errno == EINTR) {
    }
}

struct row {
    void (*wait)(struct row *);    /* waiter: say "about to wait", wait, take what came */
    void (*release)(struct row *); /* freer: wait until the waiter waits, then release */
    uint64_t *wake;                /* latency samples, ns */
    size_t samples;
    /* GStreamer */
    GstBufferPool *pool;
    GstBuffer *held;
    _Atomic(GstBuffer *) back;
    atomic_int waiting;
    /* pthread condvar */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int value, cond_waiting;
};

static void gst_wait(struct row *r) {
    GstBuffer *b = NULL;
    atomic_store_explicit(&r->waiting, 1, memory_order_release);
    if (gst_buffer_pool_acquire_buffer(r->pool, &b, NULL) != GST_FLOW_OK)
        die("gst_buffer_pool_acquire_buffer failed in the hand-off");
    uint64_t t = now_ns();
    r->wake[r->samples++] = t - atomic_load_explicit(&stamp, memory_order_acquire);
    atomic_store_explicit(&r->back, b, memory_order_release);
}

static void gst_release(struct row *r) {
    while (!atomic_load_explicit(&r->waiting, memory_order_acquire)) sched_yield();
    atomic_store_explicit(&r->waiting, 0, memory_order_relaxed);
    let_sleep();
    atomic_store_explicit(&stamp, now_ns(), memory_order_release);
    gst_buffer_unref(r->held); /* back to the pool: wakes the blocked acquire */
    GstBuffer *b;
    while (!(b = atomic_exchange_explicit(&r->back, NULL, memory_order_acquire))) sched_yield();
    r->held = b;
}

static void cond_wait(struct row *r) {
    pthread_mutex_lock(&r->lock);
    r->cond_waiting = 1;
    while (!r->value) pthread_cond_wait(&r->cond, &r->lock);
    uint64_t t = now_ns();
    r->wake[r->samples++] = t - atomic_load_explicit(&stamp, memory_order_acquire);
    r->value = 0;
    r->cond_waiting = 0;
    pthread_mutex_unlock(&r->lock);
}

static int locked_read(struct row *r, int *field) {
    pthread_mutex_lock(&r->lock);
    int v = *field;
    pthread_mutex_unlock(&r->lock);
    return v;
}

static void cond_release(struct row *r) {
    while (!locked_read(r, &r->cond_waiting)) sched_yield();
    let_sleep();
    atomic_store_explicit(&stamp, now_ns(), memory_order_release);
    pthread_mutex_lock(&r->lock);
    r->value = 1;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    while (locked_read(r, &r->value)) sched_yield();
}

struct waiter_arg {
    struct row *row;
    size_t samples;
};

static void *waiter_main(void *p) {
    struct waiter_arg *a = p;
    for (size_t i = 0; i < a->samples; i++) a->row->wait(a->row);
    return NULL;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* p50 or p99 in microseconds, the index rounded as ks_alloc::bench does. */
static double percentile_us(uint64_t *v, size_t n, double q) {
    qsort(v, n, sizeof *v, cmp_u64);
    size_t i = (size_t)((double)(n - 1) * q + 0.5);
    return (double)v[i] / 1000.0;
}

int main(int argc, char **argv) {
    unsigned size = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 4096;
    unsigned frames = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 64;
    size_t samples = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 2000;
    if (!size || !frames || !samples) die("usage: pool_peers [FRAME_SIZE [FRAMES [SAMPLES]]], each at least 1");
    gst_init(&argc, &argv);

    GstBufferPool *gp = gst_pool(size, frames);
    double gst_ns = per_op(gst_cycle, gp);
    gst_buffer_pool_set_active(gp, FALSE);
    gst_object_unref(gp);

    AVBufferPool *fp = av_buffer_pool_init(size, NULL);
    if (!fp) die("av_buffer_pool_init failed");
    {
        /* Fill the pool with FRAMES buffers first, as the others start full. */
        AVBufferRef **warm = calloc(frames, sizeof *warm);
        if (!warm) die("out of memory");
        for (unsigned i = 0; i < frames; i++)
            if (!(warm[i] = av_buffer_pool_get(fp))) die("av_buffer_pool_get failed");
        for (unsigned i = 0; i < frames; i++) av_buffer_unref(&warm[i]);
        free(warm);
    }
    double ffmpeg_ns = per_op(ffmpeg_cycle, fp);
    av_buffer_pool_uninit(&fp);

    struct mutex_array ma = {.len = frames};
    pthread_mutex_init(&ma.lock, NULL);
    ma.free = calloc(frames, sizeof *ma.free);
    if (!ma.free) die("out of memory");
    for (unsigned i = 0; i < frames; i++)
        if (!(ma.free[i] = calloc(1, size))) die("out of memory");
    double mutex_ns = per_op(mutex_array_cycle, &ma);

    /* Hand-offs: the pool's only buffer, held by the freer while the waiter waits. */
    struct row rows[2];
    memset(rows, 0, sizeof rows);
    rows[0].wait = gst_wait;
    rows[0].release = gst_release;
    rows[0].pool = gst_pool(size, 1);
    if (gst_buffer_pool_acquire_buffer(rows[0].pool, &rows[0].held, NULL) != GST_FLOW_OK)
        die("the hand-off pool gave no first buffer");
    rows[1].wait = cond_wait;
    rows[1].release = cond_release;
    pthread_mutex_init(&rows[1].lock, NULL);
    pthread_cond_init(&rows[1].cond, NULL);
    pthread_t threads[2];
    struct waiter_arg args[2];
    for (int k = 0; k < 2; k++) {
        if (!(rows[k].wake = calloc(samples, sizeof(uint64_t)))) die("out of memory");
        args[k] = (struct waiter_arg){&rows[k], samples};
        if (pthread_create(&threads[k], NULL, waiter_main, &args[k])) die("pthread_create failed");
    }
    for (size_t turn = 0; turn < samples; turn++)
        for (int k = 0; k < 2; k++) rows[(k + turn) % 2].release(&rows[(k + turn) % 2]);
    for (int k = 0; k < 2; k++) pthread_join(threads[k], NULL);
    gst_buffer_unref(rows[0].held);
    gst_buffer_pool_set_active(rows[0].pool, FALSE);
    gst_object_unref(rows[0].pool);

    printf("{\"frame_size\":%u,\"frames\":%u,\"gstreamer\":\"%s\",\"ffmpeg\":\"%s\",\"results\":[\n",
           size, frames, gst_version_string(), av_version_info());
    printf("{\"name\":\"gst_acquire_release\",\"ns_per_op\":%.2f},\n", gst_ns);
    printf("{\"name\":\"ffmpeg_get_unref\",\"ns_per_op\":%.2f},\n", ffmpeg_ns);
    printf("{\"name\":\"mutex_array_single\",\"ns_per_op\":%.2f},\n", mutex_ns);
    const char *names[2] = {"gst_handoff", "pthread_cond_handoff"};
    for (int k = 0; k < 2; k++) {
        double p50 = percentile_us(rows[k].wake, rows[k].samples, 0.50);
        double p99 = percentile_us(rows[k].wake, rows[k].samples, 0.99);
        printf("{\"name\":\"%s\",\"p50_us\":%.3f,\"p99_us\":%.3f}%s\n", names[k], p50, p99,
               k ? "" : ",");
    }
    printf("]}\n");
    return 0;
}
