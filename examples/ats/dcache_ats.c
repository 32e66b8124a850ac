/*
 * dcache_ats: an Apache Traffic Server 9.2 global plugin that gives Traffic Server an HTTP
 * object cache on libdcache. See README.md beside this file for the design and the record
 * format.
 *
 *   dcache_ats.so --path=/x/cache.dc --capacity=256M --io-mode=auto --max-object-size=16M
 *
 * Threads: no dcache call that may wait for the disk runs on a network thread. A URL the
 * plugin knows to be absent (presence hints) goes to the origin at once. A hit goes:
 * READ_REQUEST_HDR (net thread) submits the read of the record to the thread's own dcache
 * queue (io_uring; whole, when the presence hints know its size, else the first window) ->
 * the queue's completion, announced on a socketpair the thread reads as a TSVConn, is reaped
 * on the same thread, which builds the response, calls TSHttpTxnIntercept and re-enables the
 * transaction -> the intercept continuation (a fresh mutex: no lock retry) writes it. Calls
 * that block (fills, purges, chunks of large bodies) run on the plugin's worker threads
 * (TSThreadCreate), woken through a condition variable; a chunk goes back to its network
 * thread through a socketpair that the thread reads as a TSVConn (see NetWake).
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <ts/ts.h>

#include "dcache.h"

#define PLUGIN "dcache_ats"

/* ------------------------------------------------------------------------------------------
 * Record format (one dcache value per URL; the key is the effective URL string):
 *
 *   offset  size  field
 *   0       4     magic "DCA1"
 *   4       4     header block length H (little endian)
 *   8       8     body length B
 *   16      8     birth time: unix seconds at store minus the origin's Age
 *   24      8     fill id: unique per stored version (detects a replaced value mid-stream)
 *   32      H     header block: "HTTP/1.1 200 OK\r\n" + the origin's header lines, each
 *                 ending "\r\n", without Content-Length, Age and hop-by-hop fields
 *   32+H    B     body
 *
 * One read (dcache_get of the whole value, or dcache_get_range of the first window) gives the
 * status, headers and the body or its start; a byte range of the body is one
 * dcache_get_range at 32 + H + first.
 * ------------------------------------------------------------------------------------------ */
#ifndef DCACHE_MAX_KEY_LEN
#define DCACHE_MAX_KEY_LEN 4096 /* dcache's key limit (src/cache/mod.rs MAX_KEY_LEN) */
#endif
#define REC_MAGIC "DCA1"
#define REC_PREFIX 32
#define MAX_HEADER_BLOCK 65536

static uint64_t le64(const uint8_t *p)
{
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) {
    v = (v << 8) | p[i];
  }
  return v;
}
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void put64(uint8_t *p, uint64_t v)
{
  for (int i = 0; i < 8; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}
static void put32(uint8_t *p, uint32_t v)
{
  for (int i = 0; i < 4; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

/* ------------------------------------------------------------------------------------------
 * Configuration, globals, statistics
 * ------------------------------------------------------------------------------------------ */
static struct {
  char *path;
  uint64_t capacity;
  uint32_t io_mode;
  uint64_t max_object;
  char *stats_path;    /* without the leading '/' */
  uint32_t sync_writes;
  uint32_t reformat; /* format a cache this library cannot read (an older format) */
  uint32_t admission; /* DCACHE_ADMIT_ALL or DCACHE_ADMIT_FILTERED */
  uint64_t write_budget; /* bytes per second, 0 = none (with --admission=filtered) */
  uint64_t flush_ms;   /* periodic dcache_flush, 0 = none */
  char *metrics_textfile; /* dcache_options.metrics_textfile, NULL = none */
  uint32_t metrics_interval_ms;
  size_t window;       /* first read of a hit */
  size_t chunk;        /* later reads of a large body, and the fill's write unit */
  int threads;         /* worker threads */
  uint32_t hit_queue;  /* lookups on a dcache queue per network thread (else on the workers) */
} cfg;

static dcache *g_cache;                 /* NULL when closed or failed to open */
static pthread_rwlock_t g_cache_lock; /* initialised in TSPluginInit, writer-preferring */
static int g_txn_arg = -1;
static uint64_t g_fill_id_base;
static atomic_uint_fast64_t g_fill_seq;
static atomic_int g_shutdown;

/* The plugin's counters: one table for the enum, the names and the help text. */
#define STATS(X)                                                                                                         \
  X(HITS, "hits", "Requests answered from the cache")                                                                    \
  X(MISSES, "misses", "Cacheable requests the cache did not hold")                                                       \
  X(STORES, "stores", "Responses stored")                                                                                \
  X(ABORTS, "aborts", "Fills abandoned before their end (the response was not stored)")                                  \
  X(PURGES, "purges", "PURGE requests that removed a response")                                                          \
  X(BYTES_SERVED, "bytes_served", "Body bytes sent from the cache")                                                      \
  X(HIT_ERRORS, "hit_errors", "Hits that failed while reading and went to the origin")                                   \
  X(COLLAPSED, "collapsed", "Requests that waited for a fill of the same URL in flight")                                 \
  X(NOT_CACHEABLE, "not_cacheable", "Responses the HTTP rules kept out of the cache")                                    \
  X(DECLINED, "declined", "Responses the admission filter declined")                                                     \
  X(REVALIDATED, "revalidated", "Stored responses validated with the origin (a request no-cache)")                     \
  X(QUEUE_LOOKUPS, "queue_lookups", "Lookups read through a network thread's dcache queue")                             \
  X(WORKER_LOOKUPS, "worker_lookups", "Lookups read by the worker threads (blocking reads)")                            \
  X(SHARED_LOOKUPS, "shared_lookups", "Lookups answered by another request's read of the same URL on the same thread") \
  X(QUEUE_CHUNKS, "queue_chunks", "Chunks of large bodies read through a network thread's dcache queue")
#define STAT_ENUM(id, name, help) ST_##id,
#define STAT_NAME(id, name, help) name,
#define STAT_HELP(id, name, help) help,
enum { STATS(STAT_ENUM) ST_COUNT };
static const char *stat_names[ST_COUNT] = {STATS(STAT_NAME)};
static const char *stat_helps[ST_COUNT] = {STATS(STAT_HELP)};
static int stat_ids[ST_COUNT];
static atomic_int_fast64_t stat_vals[ST_COUNT]; /* exact values for the stats URL */

static void stat_add(int which, int64_t n)
{
  atomic_fetch_add(&stat_vals[which], n);
  TSStatIntIncrement(stat_ids[which], n);
}

/* ------------------------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------------------------ */
static void *xmalloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  TSReleaseAssert(p != NULL);
  return p;
}
static void *xcalloc(size_t n, size_t m)
{
  void *p = calloc(n ? n : 1, m ? m : 1);
  TSReleaseAssert(p != NULL);
  return p;
}

typedef struct {
  char *p;
  size_t len, cap;
} Str;

static void str_add(Str *s, const char *d, size_t n)
{
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 256;
    while (cap < s->len + n + 1) {
      cap *= 2;
    }
    s->p = realloc(s->p, cap);
    TSReleaseAssert(s->p != NULL);
    s->cap = cap;
  }
  memcpy(s->p + s->len, d, n);
  s->len += n;
  s->p[s->len] = 0;
}
static void str_cat(Str *s, const char *z) { str_add(s, z, strlen(z)); }
static void str_fmt(Str *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_fmt(Str *s, const char *fmt, ...)
{
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n > 0) {
    str_add(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
  }
}

static bool parse_size(const char *s, uint64_t *out)
{
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || end == s) {
    return false;
  }
  uint64_t mul = 1;
  switch (toupper((unsigned char)*end)) {
  case 0:
    break;
  case 'K':
    mul = 1ULL << 10;
    end++;
    break;
  case 'M':
    mul = 1ULL << 20;
    end++;
    break;
  case 'G':
    mul = 1ULL << 30;
    end++;
    break;
  case 'T':
    mul = 1ULL << 40;
    end++;
    break;
  case 'B':
    break;
  default:
    return false;
  }
  if (*end == 'i' || *end == 'I') {
    end++;
  }
  if (*end == 'B' || *end == 'b') {
    end++;
  }
  if (*end) {
    return false;
  }
  *out = (uint64_t)v * mul;
  return true;
}

static bool parse_u64(const char *s, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  size_t i = 0;
  if (n == 0) {
    return false;
  }
  for (; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) {
      return false;
    }
    if (v > (UINT64_MAX - 9) / 10) {
      return false;
    }
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* A byte position: digits only; too many for 64 bits saturates (a last-byte-pos past any
 * body means "to the end", RFC 9110 14.1.1; a first-byte-pos past it is unsatisfiable). */
static bool parse_pos(const char *s, size_t n, uint64_t *out)
{
  uint64_t v = 0;
  if (n == 0) {
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i])) {
      return false;
    }
    unsigned d = (unsigned)(s[i] - '0');
    v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
  }
  *out = v;
  return true;
}

static const char *trim(const char *s, size_t *n)
{
  while (*n && (s[0] == ' ' || s[0] == '\t')) {
    s++;
    (*n)--;
  }
  while (*n && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) {
    (*n)--;
  }
  return s;
}

static bool name_is(const char *name, size_t n, const char *z)
{
  return strlen(z) == n && strncasecmp(name, z, n) == 0;
}

static uint64_t now_secs(void) { return (uint64_t)time(NULL); }

/* ------------------------------------------------------------------------------------------
 * The worker pool: threads of our own (TSThreadCreate, so they are Traffic Server threads and
 * may call the API) that run every blocking dcache call. A network thread hands a job over
 * with a pthread condition variable, which involves no Traffic Server mutex: scheduling a
 * continuation on the TASK pool instead locks the continuation's mutex in the scheduling
 * thread, and when the TASK thread wakes fast enough to find it still locked it retries
 * 5-10 ms later (measured: 1 hit in 3 took 5.5 ms). Results go back with
 * TSHttpTxnReenable (no plugin mutex involved) or TSContScheduleOnThread.
 * ------------------------------------------------------------------------------------------ */
typedef struct Job {
  struct Job *next;
  void (*fn)(void *);
  void *arg;
  bool heap; /* allocated by pool_submit (else embedded in its argument) */
} Job;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  Job *head, *tail;
  int nthreads;
} g_pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

static void pool_push(Job *j)
{
  j->next = NULL;
  pthread_mutex_lock(&g_pool.mu);
  if (g_pool.tail) {
    g_pool.tail->next = j;
  } else {
    g_pool.head = j;
  }
  g_pool.tail = j;
  pthread_cond_signal(&g_pool.cv);
  pthread_mutex_unlock(&g_pool.mu);
}

static void pool_submit(void (*fn)(void *), void *arg)
{
  Job *j = xmalloc(sizeof *j);
  j->fn = fn;
  j->arg = arg;
  j->heap = true;
  pool_push(j);
}

static void *pool_worker(void *arg)
{
  (void)arg;
  for (;;) {
    pthread_mutex_lock(&g_pool.mu);
    while (!g_pool.head) {
      pthread_cond_wait(&g_pool.cv, &g_pool.mu);
    }
    Job *j = g_pool.head;
    g_pool.head = j->next;
    if (!g_pool.head) {
      g_pool.tail = NULL;
    }
    pthread_mutex_unlock(&g_pool.mu);
    void (*fn)(void *) = j->fn;
    void *arg = j->arg;
    if (j->heap) {
      free(j);
    }
    fn(arg); /* may free an embedded job with its argument */
  }
  return NULL;
}

/* ------------------------------------------------------------------------------------------
 * Presence hints: what the plugin learned about URLs since it started, so that a network
 * thread can send a URL known to be absent straight to the origin without a hand-over.
 * dcache's own index is in memory, but dcache_value_size reads the entry (to check the
 * full key and the expiry) when the index has the key, so the network thread does not call
 * it. A direct-mapped table of 64-bit words: (tag << 1) | present, 0 = nothing known. A
 * stale "present" costs one lookup on a worker; a stale "absent" (a race with a commit)
 * costs one origin fetch. Unknown URLs (every URL after a restart) go to a worker.
 * ------------------------------------------------------------------------------------------ */
enum { HINT_UNKNOWN = 0, HINT_ABSENT, HINT_PRESENT };
static _Atomic uint64_t *g_hints;
static uint64_t g_hint_mask;

static uint64_t key_hash64(const char *k, size_t n)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a, then a final mix */
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)k[i];
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

/* A word: bit 63 set (0 = empty slot), bits 10..61 a tag from the hash's high bits, bits 1..9
 * the record's size in 4 KiB units when it is at most HINT_SIZE_MAX units, about 2 MiB (0 = not
 * known or larger), bit 0 present. The size lets a worker read a small record whole with one
 * dcache_get straight into a buffer of the right size (a get with a too-small buffer would
 * read the whole entry and fail). */
#define HINT_SIZE_UNIT 4096u
#define HINT_SIZE_MAX 511u

static uint64_t hint_tag(uint64_t h) { return (1ULL << 63) | ((h >> 12) << 10); }

/* *size_out: the record's size rounded up to 4 KiB when known, else 0. h = key_hash64(key). */
static int hint_get_h(uint64_t h, uint64_t *size_out)
{
  if (size_out) {
    *size_out = 0;
  }
  if (!g_hints) {
    return HINT_UNKNOWN;
  }
  uint64_t v = atomic_load_explicit(&g_hints[h & g_hint_mask], memory_order_relaxed);
  if ((v & ~(uint64_t)0x3ff) != hint_tag(h)) {
    return HINT_UNKNOWN;
  }
  if (size_out) {
    *size_out = ((v >> 1) & 0x1ff) * HINT_SIZE_UNIT;
  }
  return (v & 1) ? HINT_PRESENT : HINT_ABSENT;
}

/* size: the record's size in bytes when present and known, else 0. */
static void hint_set_h(uint64_t h, int state, uint64_t size)
{
  if (!g_hints) {
    return;
  }
  uint64_t units = (size + HINT_SIZE_UNIT - 1) / HINT_SIZE_UNIT;
  if (state != HINT_PRESENT || units > HINT_SIZE_MAX) {
    units = 0;
  }
  uint64_t v = hint_tag(h) | (units << 1) | (state == HINT_PRESENT ? 1 : 0);
  _Atomic uint64_t *slot = &g_hints[h & g_hint_mask];
  if (atomic_load_explicit(slot, memory_order_relaxed) != v) { /* a hit does not dirty the line */
    atomic_store_explicit(slot, v, memory_order_relaxed);
  }
}

static void hint_set_size(const char *k, size_t n, int state, uint64_t size) { hint_set_h(key_hash64(k, n), state, size); }

static void hint_set(const char *k, size_t n, int state) { hint_set_size(k, n, state, 0); }

/* Generations of URLs (by hash), bumped after each commit and purge: a read of the cache may
 * be shared by later lookups (see QueueRead) only while its URL's generation is the one it
 * was submitted under. */
#define GEN_SLOTS 4096
static atomic_uint_fast64_t g_share_gen[GEN_SLOTS];
static uint64_t share_gen(uint64_t h) { return atomic_load(&g_share_gen[h % GEN_SLOTS]); }
static void share_invalidate(uint64_t h) { atomic_fetch_add(&g_share_gen[h % GEN_SLOTS], 1); }

/* ------------------------------------------------------------------------------------------
 * Per-transaction state
 * ------------------------------------------------------------------------------------------ */
enum { M_GET = 1, M_HEAD, M_PURGE };

struct Fill;

typedef struct TxnState {
  char *key; /* TSfree */
  int key_len;
  int method;
  bool may_fill;     /* a miss whose response may be stored */
  bool req_no_store; /* Authorization, or Cache-Control: no-store in the request */
  bool has_range;
  bool no_collapse; /* released from behind a fill that did not store: go to the origin */
  bool revalidate;  /* request no-cache: a stored response is served only once validated */
  bool stats_prometheus; /* the stats URL with ?format=prometheus */
  char *range; /* copy of the Range value (GET only), or NULL */
  char *if_none_match;      /* the If-None-Match values joined with ", ", or NULL */
  time_t if_modified_since; /* If-Modified-Since, 0 if absent or not a date */
  uint64_t hash; /* key_hash64 of the key */
  struct Fill *fill;
} TxnState;

static void txn_state_free(TxnState *st)
{
  if (st->key) {
    TSfree(st->key);
  }
  free(st->range);
  free(st->if_none_match);
  free(st);
}

/* Per-transaction hooks are added only to a transaction that goes on to the origin (a miss):
 * a hit costs no READ_RESPONSE_HDR or TXN_CLOSE callout. */
static TSCont g_txn_cont;

static void txn_track(TSHttpTxn txnp)
{
  TSHttpTxnHookAdd(txnp, TS_HTTP_READ_RESPONSE_HDR_HOOK, g_txn_cont);
  TSHttpTxnHookAdd(txnp, TS_HTTP_TXN_CLOSE_HOOK, g_txn_cont);
}

/* A transaction answered by the plugin (hit, PURGE, stats) needs no state after the answer
 * is prepared: drop it before re-enabling. */
static void txn_release(TSHttpTxn txnp, TxnState *st)
{
  TSUserArgSet(txnp, g_txn_arg, NULL);
  txn_state_free(st);
}

/* ------------------------------------------------------------------------------------------
 * Read buffers: aligned for O_DIRECT, kept per thread for the next read (at most BUF_KEEP of
 * each power-of-two size from 4 KiB to 2 MiB). A large malloc is a fresh mmap, whose page
 * faults cost more than the read into it.
 * ------------------------------------------------------------------------------------------ */
#define BUF_CLASSES 10
#define BUF_KEEP 4
typedef struct FreeBuf {
  struct FreeBuf *next;
} FreeBuf;
static __thread FreeBuf *tl_free_bufs[BUF_CLASSES];
static __thread int tl_free_count[BUF_CLASSES];
static size_t g_read_align = 4096; /* what dcache needs of a buffer it reads into in place */

/* The class of a buffer of n bytes and its size, or -1 above 2 MiB. */
static int buf_class(size_t n, size_t *size)
{
  size_t sz = 4096;
  int c = 0;
  while (sz < n && c < BUF_CLASSES - 1) {
    sz <<= 1;
    c++;
  }
  *size = sz >= n ? sz : (n + 4095) / 4096 * 4096;
  return sz >= n ? c : -1;
}

/* A buffer of at least `need` bytes; *cap says how many. */
static uint8_t *buf_get(size_t need, size_t *cap)
{
  int c = buf_class(need, cap);
  if (c >= 0 && tl_free_bufs[c]) {
    FreeBuf *b = tl_free_bufs[c];
    tl_free_bufs[c] = b->next;
    tl_free_count[c]--;
    return (uint8_t *)b;
  }
  void *p = NULL;
  TSReleaseAssert(posix_memalign(&p, g_read_align > 4096 ? g_read_align : 4096, *cap) == 0);
  return p;
}

/* Gives back a buffer from buf_get (cap as it said), or a malloc'd one (cap 0); NULL is
 * fine. */
static void buf_put(uint8_t *p, size_t cap)
{
  size_t size;
  int c = p && cap ? buf_class(cap, &size) : -1;
  if (c < 0 || size != cap || tl_free_count[c] >= BUF_KEEP) {
    free(p);
    return;
  }
  FreeBuf *b = (FreeBuf *)p;
  b->next = tl_free_bufs[c];
  tl_free_bufs[c] = b;
  tl_free_count[c]++;
}

/* ------------------------------------------------------------------------------------------
 * Responder: answers an intercepted transaction (a hit, or a small fixed response)
 * ------------------------------------------------------------------------------------------ */
typedef struct Responder {
  TSCont cont; /* the intercept continuation: its own mutex */
  TSMutex mutex;
  TSVConn vc;
  TSEventThread thread;
  struct NetWake *wake;           /* this network thread's wake-up channel, or NULL */
  struct HitQueue *hq;            /* this network thread's dcache queue for chunk reads, or NULL */
  struct Responder *wake_next;    /* in the channel's list of finished chunk reads */
  TSIOBuffer req_buf, out_buf;
  TSIOBufferReader req_reader, out_reader;
  TSVIO write_vio;
  bool closed, accepted, read_inflight, is_hit;
  int64_t total_out;

  /* out_buf holds the response header and the part of the body read with the window; it is
   * filled on the worker, so the network thread only starts the write */

  /* streaming of value bytes [next_off, end_off) beyond the window */
  char *key;
  size_t key_len;
  uint64_t next_off, end_off, fill_id, value_size;
  uint64_t body_bytes;

  /* a chunk read by a worker (malloc'd: chunk_cap 0) or on the queue (buf_get), handed back */
  uint8_t *chunk;
  size_t chunk_len, chunk_cap;
  bool chunk_err;
} Responder;

static int responder_handler(TSCont contp, TSEvent event, void *edata);

static Responder *responder_new(void)
{
  Responder *r = xcalloc(1, sizeof *r);
  r->mutex = TSMutexCreate();
  r->cont = TSContCreate(responder_handler, r->mutex);
  TSContDataSet(r->cont, r);
  r->out_buf = TSIOBufferCreate();
  r->out_reader = TSIOBufferReaderAlloc(r->out_buf);
  return r;
}

/* Appends n bytes to buf. glibc copies a large block with `rep movsb`, which some CPUs run
 * several times slower when the destination lies a few bytes past the source modulo 4 KiB
 * (AMD EPYC here: 64 KiB in 22 us instead of 4) -- and a hit's body lands just there, its
 * response header being a little longer than the record's. Copies of at most 2 KiB, below
 * glibc's threshold for `rep movsb`, run at full speed whatever the addresses. */
#define COPY_PIECE 2048
static void iobuffer_append(TSIOBuffer buf, const uint8_t *d, size_t n)
{
  while (n > 0) {
    int64_t avail = 0;
    uint8_t *to = (uint8_t *)TSIOBufferBlockWriteStart(TSIOBufferStart(buf), &avail);
    size_t k = n < (size_t)avail ? n : (size_t)avail;
    for (size_t at = 0; at < k; at += COPY_PIECE) {
      memcpy(to + at, d + at, k - at < COPY_PIECE ? k - at : COPY_PIECE);
    }
    TSIOBufferProduce(buf, (int64_t)k);
    d += k;
    n -= k;
  }
}

static void responder_put(Responder *r, const void *d, size_t n)
{
  iobuffer_append(r->out_buf, d, n);
  r->total_out += (int64_t)n;
}

static void responder_free(Responder *r)
{
  if (r->req_reader) {
    TSIOBufferReaderFree(r->req_reader);
  }
  if (r->req_buf) {
    TSIOBufferDestroy(r->req_buf);
  }
  if (r->out_reader) {
    TSIOBufferReaderFree(r->out_reader);
  }
  if (r->out_buf) {
    TSIOBufferDestroy(r->out_buf);
  }
  free(r->key);
  buf_put(r->chunk, r->chunk_cap);
  TSContDestroy(r->cont);
  free(r);
}

/* A fixed response: status line, a few headers and a small body. */
static Responder *responder_fixed(int status, const char *reason, const char *ctype, const char *body)
{
  Responder *r = responder_new();
  Str s = {0};
  size_t blen = body ? strlen(body) : 0;
  str_fmt(&s, "HTTP/1.1 %d %s\r\n", status, reason);
  str_fmt(&s, "Content-Length: %zu\r\n", blen);
  if (ctype) {
    str_fmt(&s, "Content-Type: %s\r\n", ctype);
  }
  str_cat(&s, "Cache-Control: no-store\r\nX-Dcache: plugin\r\n\r\n");
  if (blen) {
    str_add(&s, body, blen);
  }
  responder_put(r, s.p, s.len);
  free(s.p);
  return r;
}

/* Closes the vconn (once). Returns true when r may be freed now: no chunk read in flight. */
static bool responder_close(Responder *r, bool abort)
{
  if (!r->closed) {
    if (r->vc) {
      if (abort) {
        TSVConnAbort(r->vc, 1);
      } else {
        TSVConnClose(r->vc);
      }
    }
    if (r->is_hit && !abort) {
      stat_add(ST_BYTES_SERVED, (int64_t)r->body_bytes);
    }
    r->closed = true;
  }
  return !r->read_inflight;
}

/* In r's own handler: closes, and frees r unless a chunk read is in flight (it frees then). */
static void responder_finish(Responder *r, bool abort)
{
  if (responder_close(r, abort)) {
    responder_free(r);
  }
}

/* A socket read as a TSVConn on the calling network thread (TSVConnFdCreate): the bytes
 * that arrive only wake its handler, which drains them with socket_channel_drain. A vconn
 * reads with recvmsg, so it must be a socket (an eventfd is refused). */
typedef struct SocketChannel {
  TSVConn vc;
  TSCont cont;
  TSVIO vio;
  TSIOBuffer buf;
  TSIOBufferReader rd;
} SocketChannel;

/* Starts reading fd (which the vconn then owns) with `handler`, whose data is `data`. */
static bool socket_channel_open(SocketChannel *ch, int fd, TSEventFunc handler, void *data)
{
  ch->vc = TSVConnFdCreate(fd);
  if (!ch->vc) {
    return false;
  }
  TSVConnInactivityTimeoutCancel(ch->vc);
  TSVConnActiveTimeoutCancel(ch->vc);
  ch->cont = TSContCreate(handler, TSMutexCreate());
  TSContDataSet(ch->cont, data);
  ch->buf = TSIOBufferCreate();
  ch->rd = TSIOBufferReaderAlloc(ch->buf);
  ch->vio = TSVConnRead(ch->vc, ch->cont, ch->buf, INT64_MAX);
  return true;
}

/* In the handler: drops the bytes that woke it. False for any event but a read (the channel
 * is gone). */
static bool socket_channel_drain(SocketChannel *ch, TSEvent event)
{
  if (event != TS_EVENT_VCONN_READ_READY) {
    return false;
  }
  TSIOBufferReaderConsume(ch->rd, TSIOBufferReaderAvail(ch->rd));
  TSVIOReenable(ch->vio);
  return true;
}

/* ---- waking a network thread from a worker ----
 * Scheduling a continuation onto a network thread from a worker (TSContScheduleOnThread)
 * locks the continuation's mutex in the worker while the event is queued; when the network
 * thread wakes fast enough, its try-lock fails and the event waits for the 10 ms retry
 * (measured: 1 MiB hits at p90 20 ms). Instead each network thread that streams a large body
 * gets a socketpair read through a TSVConn (TSVConnFdCreate) on that thread: a worker queues
 * the finished read under a pthread mutex and writes one byte; the network thread's read
 * event, delivered by its own NetHandler to a continuation no worker ever locks, takes the
 * queue. */
typedef struct NetWake {
  int fds[2];
  SocketChannel ch; /* reads fds[0] */
  pthread_mutex_t mu;
  struct Responder *head;
  bool signalled, dead;
} NetWake;

static __thread NetWake *tl_wake;
static __thread bool tl_wake_failed;

static void chunk_deliver(struct Responder *r);

static int net_wake_handler(TSCont contp, TSEvent event, void *edata)
{
  (void)edata;
  NetWake *w = TSContDataGet(contp);
  if (!socket_channel_drain(&w->ch, event)) {
    TSError("[%s] wake-up channel event %d: falling back to scheduled continuations", PLUGIN, event);
    pthread_mutex_lock(&w->mu);
    w->dead = true;
    pthread_mutex_unlock(&w->mu);
  }
  pthread_mutex_lock(&w->mu);
  struct Responder *list = w->head;
  w->head = NULL;
  w->signalled = false;
  pthread_mutex_unlock(&w->mu);
  while (list) {
    struct Responder *r = list;
    list = r->wake_next;
    chunk_deliver(r);
  }
  return 0;
}

/* The calling network thread's channel, made on first use; NULL if it cannot be made. */
static NetWake *net_wake_get(void)
{
  if (tl_wake || tl_wake_failed) {
    return tl_wake;
  }
  tl_wake_failed = true;
  NetWake *w = xcalloc(1, sizeof *w);
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, w->fds) != 0) {
    TSError("[%s] socketpair: %s", PLUGIN, strerror(errno));
    free(w);
    return NULL;
  }
  pthread_mutex_init(&w->mu, NULL);
  if (!socket_channel_open(&w->ch, w->fds[0], net_wake_handler, w)) {
    TSError("[%s] TSVConnFdCreate failed", PLUGIN);
    pthread_mutex_destroy(&w->mu);
    close(w->fds[0]);
    close(w->fds[1]);
    free(w);
    return NULL;
  }
  tl_wake_failed = false;
  tl_wake = w;
  return w;
}

/* From a worker: hands r to its network thread. False when the channel is gone. */
static bool net_wake_post(NetWake *w, struct Responder *r)
{
  pthread_mutex_lock(&w->mu);
  if (w->dead) {
    pthread_mutex_unlock(&w->mu);
    return false;
  }
  r->wake_next = w->head;
  w->head = r;
  bool signal = !w->signalled;
  w->signalled = true;
  pthread_mutex_unlock(&w->mu);
  if (signal) {
    char c = 1;
    ssize_t n;
    do {
      n = write(w->fds[1], &c, 1);
    } while (n < 0 && errno == EINTR);
    /* EAGAIN: the socket already holds unread bytes, so a read event is coming */
  }
  return true;
}

/* ---- chunk reads of a large body by the workers ---- */
typedef struct {
  Responder *r;
  uint64_t off;
  size_t len;
} ChunkJob;

static int chunk_return(TSCont contp, TSEvent event, void *edata);

static void chunk_job(void *arg)
{
  ChunkJob *job = arg;
  Responder *r = job->r;
  uint8_t *buf = xmalloc(job->len);
  size_t got = 0;
  bool err = true;
  pthread_rwlock_rdlock(&g_cache_lock);
  if (g_cache) {
    dcache_result rc = dcache_get_range(g_cache, (const uint8_t *)r->key, r->key_len, job->off, buf, job->len, &got);
    if (rc == DCACHE_OK && got == job->len) {
      /* The value may have been replaced since the first window was read: the fill id of
       * the value as it is now must still be the one the response started with. No version
       * can come back once replaced, so equal ids after the read mean the read saw it too. */
      uint8_t pre[REC_PREFIX];
      size_t n = 0;
      rc = dcache_get_range(g_cache, (const uint8_t *)r->key, r->key_len, 0, pre, sizeof pre, &n);
      if (rc == DCACHE_OK && n == REC_PREFIX && le64(pre + 24) == r->fill_id) {
        err = false;
      }
    }
  }
  pthread_rwlock_unlock(&g_cache_lock);
  r->chunk = buf;
  r->chunk_cap = 0; /* malloc'd */
  r->chunk_len = got;
  r->chunk_err = err;
  free(job);
  if (r->wake && net_wake_post(r->wake, r)) {
    return;
  }
  /* No wake-up channel: back through a continuation scheduled on the thread (which can meet
   * a 5-10 ms lock retry, see NetWake). */
  TSCont ret = TSContCreate(chunk_return, TSMutexCreate());
  TSContDataSet(ret, r);
  TSContScheduleOnThread(ret, 0, r->thread);
}

static void responder_fetch_more(Responder *r);
static struct HitQueue *hit_queue_get(void);
static bool piece_submit(Responder *r, uint64_t off, size_t len);

/* On r's network thread: the chunk a worker (or the queue) read goes into the response. */
static void chunk_deliver(Responder *r)
{
  /* r's mutex is only ever taken on this network thread (PluginVC schedules its events on
   * the thread that calls it), so this lock does not wait. r is freed after the unlock:
   * freeing it destroys the continuation that owns the mutex. */
  TSMutex m = r->mutex;
  bool free_now = false;
  TSMutexLock(m);
  r->read_inflight = false;
  if (r->closed) {
    free_now = true;
  } else if (r->chunk_err) {
    TSError("[%s] hit aborted: the entry changed or vanished while it was being sent", PLUGIN);
    stat_add(ST_HIT_ERRORS, 1);
    buf_put(r->chunk, r->chunk_cap);
    r->chunk = NULL;
    free_now = responder_close(r, true);
  } else {
    iobuffer_append(r->out_buf, r->chunk, r->chunk_len);
    r->next_off += r->chunk_len;
    r->body_bytes += r->chunk_len;
    buf_put(r->chunk, r->chunk_cap);
    r->chunk = NULL;
    TSVIOReenable(r->write_vio);
    responder_fetch_more(r);
  }
  TSMutexUnlock(m);
  if (free_now) {
    responder_free(r);
  }
}

static int chunk_return(TSCont contp, TSEvent event, void *edata)
{
  (void)event;
  (void)edata;
  Responder *r = TSContDataGet(contp);
  TSContDestroy(contp);
  chunk_deliver(r);
  return 0;
}

/* Starts the next chunk read when less than a chunk is buffered. Holds r->mutex. */
static void responder_fetch_more(Responder *r)
{
  if (r->read_inflight || r->closed || r->next_off >= r->end_off) {
    return;
  }
  if (TSIOBufferReaderAvail(r->out_reader) >= (int64_t)cfg.chunk) {
    return;
  }
  uint64_t left = r->end_off - r->next_off;
  size_t len = left < cfg.chunk ? (size_t)left : cfg.chunk;
  r->read_inflight = true;
  if (r->hq && piece_submit(r, r->next_off, len)) {
    return;
  }
  ChunkJob *job = xmalloc(sizeof *job);
  job->r = r;
  job->off = r->next_off;
  job->len = len;
  pool_submit(chunk_job, job);
}

static int responder_handler(TSCont contp, TSEvent event, void *edata)
{
  Responder *r = TSContDataGet(contp);
  switch (event) {
  case TS_EVENT_NET_ACCEPT:
    r->vc = (TSVConn)edata;
    r->accepted = true;
    r->thread = TSEventThreadSelf();
    if (r->next_off < r->end_off) {
      r->hq = cfg.hit_queue ? hit_queue_get() : NULL;
      if (!r->hq) {
        r->wake = net_wake_get();
      }
    }
    r->req_buf = TSIOBufferCreate();
    r->req_reader = TSIOBufferReaderAlloc(r->req_buf);
    TSVConnRead(r->vc, contp, r->req_buf, INT64_MAX);
    r->write_vio = TSVConnWrite(r->vc, contp, r->out_reader, r->total_out);
    responder_fetch_more(r);
    return 0;
  case TS_EVENT_NET_ACCEPT_FAILED:
    r->closed = true;
    responder_free(r);
    return 0;
  case TS_EVENT_VCONN_READ_READY:
    TSIOBufferReaderConsume(r->req_reader, TSIOBufferReaderAvail(r->req_reader));
    return 0;
  case TS_EVENT_VCONN_READ_COMPLETE:
  case TS_EVENT_VCONN_EOS:
    /* The request side is done; the response goes on. */
    return 0;
  case TS_EVENT_VCONN_WRITE_READY:
    responder_fetch_more(r);
    return 0;
  case TS_EVENT_VCONN_WRITE_COMPLETE:
    responder_finish(r, false);
    return 0;
  default:
    /* TS_EVENT_ERROR, timeouts: the transaction went away. */
    TSDebug(PLUGIN, "responder event %d: closing", event);
    responder_finish(r, true);
    return 0;
  }
}

/* ------------------------------------------------------------------------------------------
 * Reading a record
 * ------------------------------------------------------------------------------------------ */
/* A lookup reads into a buffer of its own (so that reads on the queue may be in flight for
 * many transactions at once), aligned for O_DIRECT: dcache reads a value of 64 KiB and more
 * straight into it, in one system call, without a copy of its own. */
typedef struct Record {
  uint8_t *buf; /* the value's first got bytes, or NULL */
  size_t cap;   /* room in buf */
  size_t got;
  bool whole;   /* read with dcache_get: got is the whole value */
  uint64_t total;
  uint32_t hlen;
  uint64_t blen, birth, fill_id;
} Record;


/* Gives rec an empty buffer of at least `need` bytes (a multiple of 4 KiB: as long as any
 * value up to `need` bytes rounded up to the device's unit, which a get in place needs). */
static void record_alloc(Record *rec, size_t need)
{
  rec->buf = buf_get(need, &rec->cap);
  rec->got = 0;
}

static void record_free(Record *rec)
{
  buf_put(rec->buf, rec->cap);
  rec->buf = NULL;
}

/* The largest record read whole, in one get (in place on io_uring: no thread, no copy in
 * dcache): the window, or the largest size the presence hints record (about 2 MiB) if that
 * is more. Larger bodies stream in chunks. */
static size_t g_whole_max;

/* Readies rec for a read of key's value: whole (a get into a buffer as long as the value,
 * which the presence hints know: size_hint, a multiple of 4 KiB, 0 = not known) when it is
 * at most g_whole_max and `window` is false, else the first window (a range read), the rest
 * of a larger body following in chunks. A whole get of 64 KiB and more reads straight into
 * the buffer: one system call, no copy in dcache. A
 * window read costs dcache a copy (it reads an entry up to 256 KiB whole through its own
 * buffer; a larger one costs a header read and then the span). */
static void record_prepare(Record *rec, uint64_t size_hint, bool window)
{
  rec->whole = !window && size_hint && size_hint <= g_whole_max;
  record_alloc(rec, rec->whole ? (size_t)size_hint : cfg.window);
}

/* After a read of got bytes into rec: checks that they are a
 * record (else NOT_FOUND, logged). */
static dcache_result record_check(Record *rec, const char *key, size_t key_len, size_t got)
{
  uint8_t *buf = rec->buf;
  rec->got = got;
  if (got >= REC_PREFIX) {
    rec->hlen = le32(buf + 4);
    rec->blen = le64(buf + 8);
    rec->birth = le64(buf + 16);
    rec->fill_id = le64(buf + 24);
    rec->total = REC_PREFIX + (uint64_t)rec->hlen + rec->blen;
  }
  /* A short read (or a whole get) is the whole value, so its size must be the recorded one. */
  if (got < REC_PREFIX || memcmp(buf, REC_MAGIC, 4) != 0 || rec->hlen > MAX_HEADER_BLOCK || REC_PREFIX + (uint64_t)rec->hlen > got ||
      (rec->whole || got < cfg.window ? rec->total != got : rec->total < got)) {
    TSError("[%s] entry for %.*s is not a dcache_ats record: ignored", PLUGIN, (int)key_len, key);
    return DCACHE_NOT_FOUND;
  }
  return DCACHE_OK;
}

/* Reads key's value, or its first window, into rec (see record_prepare) with blocking dcache
 * calls, on a worker. The caller frees rec. Caller holds the read lock and g_cache != NULL. */
static dcache_result record_read(const char *key, size_t key_len, uint64_t size_hint, Record *rec)
{
  record_prepare(rec, size_hint, false);
  size_t got = 0;
  dcache_result rc = DCACHE_BUFFER_TOO_SMALL;
  if (rec->whole) {
    rc = dcache_get(g_cache, (const uint8_t *)key, key_len, rec->buf, rec->cap, &got);
    if (rc == DCACHE_BUFFER_TOO_SMALL) { /* replaced by a larger value: read the window */
      record_free(rec);
      record_prepare(rec, 0, true);
    }
  }
  if (!rec->whole) {
    rc = dcache_get_range(g_cache, (const uint8_t *)key, key_len, 0, rec->buf, cfg.window, &got);
  }
  return rc == DCACHE_OK ? record_check(rec, key, key_len, got) : rc;
}

/* Range: parses one "bytes=" range against a body of blen bytes.
 * Returns 0 = ignore (serve 200), 1 = satisfiable [*first, *last], 2 = unsatisfiable. */
static int range_parse(const char *v, uint64_t blen, uint64_t *first, uint64_t *last)
{
  size_t n = strlen(v);
  const char *s = trim(v, &n);
  if (n < 6 || strncasecmp(s, "bytes", 5) != 0) {
    return 0;
  }
  s += 5;
  n -= 5;
  s = trim(s, &n);
  if (!n || *s != '=') {
    return 0;
  }
  s++;
  n--;
  if (memchr(s, ',', n)) {
    return 0; /* several ranges: answer the whole body */
  }
  const char *dash = memchr(s, '-', n);
  if (!dash) {
    return 0;
  }
  size_t an = (size_t)(dash - s), bn = n - an - 1;
  const char *a = trim(s, &an), *b = trim(dash + 1, &bn);
  uint64_t x, y;
  if (an == 0) {
    if (!parse_pos(b, bn, &y)) {
      return 0;
    }
    if (y == 0 || blen == 0) {
      return 2;
    }
    *first = y >= blen ? 0 : blen - y;
    *last = blen - 1;
    return 1;
  }
  if (!parse_pos(a, an, &x)) {
    return 0;
  }
  if (bn == 0) {
    y = UINT64_MAX;
  } else if (!parse_pos(b, bn, &y)) {
    return 0;
  } else if (y < x) {
    return 0;
  }
  if (x >= blen) {
    return 2;
  }
  *first = x;
  *last = y >= blen ? blen - 1 : y;
  return 1;
}

/* Decimal digits of v at p (at most 20); returns their count. */
static size_t fmt_u64(char *p, uint64_t v)
{
  char t[20];
  size_t n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (size_t i = 0; i < n; i++) {
    p[i] = t[n - 1 - i];
  }
  return n;
}

static size_t lit_add(char *p, size_t at, const char *z)
{
  size_t n = strlen(z);
  memcpy(p + at, z, n);
  return at + n;
}

/* The value of the first field `name` in a stored header block (after its status line). */
static const char *block_field(const char *block, size_t hlen, const char *name, size_t *vlen)
{
  size_t nlen = strlen(name);
  const char *p = memmem(block, hlen, "\r\n", 2), *end = block + hlen;
  while (p && p + 2 < end) {
    const char *line = p + 2;
    const char *eol = memmem(line, (size_t)(end - line), "\r\n", 2);
    if (!eol) {
      break;
    }
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' && strncasecmp(line, name, nlen) == 0) {
      size_t n = (size_t)(eol - line) - nlen - 1;
      const char *v = trim(line + nlen + 1, &n);
      *vlen = n;
      return v;
    }
    p = eol;
  }
  return NULL;
}

/* An entity-tag's opaque part, quotes included, past an optional weak prefix W/. */
static const char *etag_opaque(const char *t, size_t n, size_t *on)
{
  if (n >= 2 && t[0] == 'W' && t[1] == '/') {
    t += 2;
    n -= 2;
  }
  *on = n;
  return t;
}

/* If-None-Match against the stored ETag, by weak comparison (RFC 9110 13.1.2): true when a
 * listed tag, or "*", matches. */
static bool none_match_fails(const char *list, const char *etag, size_t etag_len)
{
  size_t sn = 0;
  const char *stored = etag ? etag_opaque(etag, etag_len, &sn) : NULL;
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',') {
      p++;
    }
    if (*p == '*') {
      return true;
    }
    const char *t = p;
    if (p[0] == 'W' && p[1] == '/') {
      p += 2;
    }
    if (*p != '"') {
      return false; /* not an entity-tag: the field is ignored */
    }
    const char *close = strchr(p + 1, '"');
    if (!close) {
      return false;
    }
    p = close + 1;
    size_t on;
    const char *o = etag_opaque(t, (size_t)(p - t), &on);
    if (stored && on == sn && memcmp(o, stored, on) == 0) {
      return true;
    }
  }
  return false;
}

/* Whether a GET or HEAD with the request's validators gets 304 Not Modified for the stored
 * response (RFC 9110 13.2.2): If-None-Match decides when present, else If-Modified-Since
 * against the stored Last-Modified. */
static bool not_modified(const TxnState *st, const char *block, size_t hlen)
{
  size_t n = 0;
  if (st->if_none_match) {
    const char *etag = block_field(block, hlen, "ETag", &n);
    return none_match_fails(st->if_none_match, etag, n);
  }
  if (!st->if_modified_since) {
    return false;
  }
  const char *lm = block_field(block, hlen, "Last-Modified", &n);
  char date[64];
  if (!lm || n >= sizeof date) {
    return false;
  }
  memcpy(date, lm, n);
  date[n] = 0;
  struct tm tm = {0};
  const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return end && !*end && timegm(&tm) <= st->if_modified_since;
}

/* The stored fields a 304 carries (RFC 9110 15.4.5), with Last-Modified. */
static const char *const not_modified_fields[] = {"Cache-Control", "Content-Location", "Date", "ETag", "Expires", "Last-Modified", "Vary"};

static void put_not_modified(Responder *r, const char *block, size_t hlen, uint64_t age)
{
  Str s = {0};
  str_cat(&s, "HTTP/1.1 304 Not Modified\r\n");
  for (size_t i = 0; i < sizeof not_modified_fields / sizeof *not_modified_fields; i++) {
    size_t n = 0;
    const char *v = block_field(block, hlen, not_modified_fields[i], &n);
    if (v) {
      str_fmt(&s, "%s: %.*s\r\n", not_modified_fields[i], (int)n, v);
    }
  }
  str_fmt(&s, "Age: %" PRIu64 "\r\nX-Dcache: hit\r\n\r\n", age);
  responder_put(r, s.p, s.len);
  free(s.p);
}

/* Builds the responder for a hit from rec: the response header and the body bytes the
 * window holds go into its out_buf now; the rest of the body is read in chunks later. */
static Responder *responder_for_hit(TxnState *st, Record *rec)
{
  Responder *r = responder_new();
  r->is_hit = true;
  const char *block = (const char *)rec->buf + REC_PREFIX;
  size_t hlen = rec->hlen;
  const char *eol = memmem(block, hlen, "\r\n", 2);
  size_t status_len = eol ? (size_t)(eol - block) + 2 : hlen;
  uint64_t now = now_secs();
  uint64_t age = now > rec->birth ? now - rec->birth : 0;
  uint64_t body0 = REC_PREFIX + hlen; /* value offset of the body */
  uint64_t first = 0, last = 0;
  int rk = 0;
  Str s = {0};

  if ((st->if_none_match || st->if_modified_since) && not_modified(st, block, hlen)) {
    put_not_modified(r, block, hlen, age);
    return r;
  }
  if (st->method == M_GET && st->range) {
    rk = range_parse(st->range, rec->blen, &first, &last);
  }
  if (rk == 2) {
    str_cat(&s, "HTTP/1.1 416 Range Not Satisfiable\r\n");
    str_fmt(&s, "Content-Range: bytes */%" PRIu64 "\r\nContent-Length: 0\r\n", rec->blen);
    str_fmt(&s, "Age: %" PRIu64 "\r\nX-Dcache: hit\r\n\r\n", age);
    responder_put(r, s.p, s.len);
    free(s.p);
    return r;
  }
  if (rk == 1) {
    str_cat(&s, "HTTP/1.1 206 Partial Content\r\n");
    str_add(&s, block + status_len, hlen - status_len);
    str_fmt(&s, "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first, last, rec->blen);
    str_fmt(&s, "Content-Length: %" PRIu64 "\r\n", last - first + 1);
    str_fmt(&s, "Age: %" PRIu64 "\r\nX-Dcache: hit\r\n\r\n", age);
    responder_put(r, s.p, s.len);
    free(s.p);
  } else {
    /* the common case: the stored block as it is, then the lines added here */
    char tail[128];
    size_t tn = 0;
    responder_put(r, block, hlen);
    tn = lit_add(tail, tn, "Content-Length: ");
    tn += fmt_u64(tail + tn, rec->blen);
    tn = lit_add(tail, tn, "\r\nAge: ");
    tn += fmt_u64(tail + tn, age);
    tn = lit_add(tail, tn, "\r\nX-Dcache: hit\r\n\r\n");
    responder_put(r, tail, tn);
    first = 0;
    last = rec->blen ? rec->blen - 1 : 0;
  }

  if (st->method == M_HEAD || rec->blen == 0) {
    return r;
  }
  /* Value bytes [vs, ve) are the body to send; [0, got) are in the window already. */
  uint64_t vs = body0 + first, ve = body0 + last + 1;
  r->next_off = vs;
  if (vs < rec->got) {
    size_t to = (size_t)(ve < rec->got ? ve : rec->got);
    responder_put(r, rec->buf + vs, to - (size_t)vs);
    r->body_bytes += to - (size_t)vs;
    r->next_off = to;
  }
  r->end_off = ve;
  if (r->next_off < r->end_off) {
    r->total_out += (int64_t)(r->end_off - r->next_off); /* announced to the write VIO */
    r->key = xmalloc((size_t)st->key_len);
    memcpy(r->key, st->key, (size_t)st->key_len);
    r->key_len = (size_t)st->key_len;
    r->fill_id = rec->fill_id;
    r->value_size = rec->total;
  }
  return r;
}

/* ------------------------------------------------------------------------------------------
 * Fills: streaming a miss into a dcache_writer on the workers
 * ------------------------------------------------------------------------------------------ */
typedef struct Chunk {
  struct Chunk *next;
  size_t len, cap;
  uint8_t data[];
} Chunk;

static Chunk *chunk_new(size_t cap)
{
  Chunk *c = xmalloc(sizeof(Chunk) + cap);
  c->next = NULL;
  c->len = 0;
  c->cap = cap;
  return c;
}

typedef struct Op Op;

enum { FINAL_NONE = 0, FINAL_COMMIT, FINAL_ABORT };

typedef struct Fill {
  atomic_int refs;
  pthread_mutex_t lock;
  struct Fill *map_next;
  char *key;
  size_t key_len;
  uint64_t ttl;
  uint64_t expected; /* Content-Length */
  uint64_t record_size; /* prefix + header block + body: the value's length */
  uint64_t received; /* body bytes seen by the sink */
  Chunk *cur;        /* the chunk being filled by the sink (sink thread only) */
  Chunk *q_head, *q_tail;
  bool task_scheduled;
  int final;
  bool finished;
  bool cancelled; /* PURGE while filling */
  bool started;   /* the response was cacheable and storing began (else: pending) */
  bool failed;
  bool declined; /* the admission filter did not take it: passed through, not stored */
  dcache_writer *w;
  Op *waiters; /* requests for the same URL parked until the fill ends */
} Fill;

struct Op {
  Job job; /* for the hand-over to a worker */
  int kind;
  TSHttpTxn txnp;
  TxnState *st;
  Op *next;
  int attempt; /* lookups of the queue so far */
};

enum { OP_LOOKUP = 1, OP_PURGE, OP_STATS };

#define FILL_BUCKETS 4096
static Fill *g_fills[FILL_BUCKETS];
static pthread_mutex_t g_fills_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t key_hash(const char *k, size_t n)
{
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)k[i];
    h *= 16777619u;
  }
  return h;
}

static Fill **fill_slot(const char *key, size_t n)
{
  Fill **pp = &g_fills[key_hash(key, n) % FILL_BUCKETS];
  while (*pp && !((*pp)->key_len == n && memcmp((*pp)->key, key, n) == 0)) {
    pp = &(*pp)->map_next;
  }
  return pp;
}

static void fill_unref(Fill *f)
{
  if (atomic_fetch_sub(&f->refs, 1) == 1) {
    Chunk *c = f->q_head;
    while (c) {
      Chunk *n = c->next;
      free(c);
      c = n;
    }
    free(f->cur);
    free(f->key);
    pthread_mutex_destroy(&f->lock);
    free(f);
  }
}

static void op_schedule(Op *op);
static void op_run(Op *op);

static void fill_job(void *arg);

static void fill_kick(Fill *f)
{
  /* f->lock held */
  if (!f->task_scheduled) {
    f->task_scheduled = true;
    atomic_fetch_add(&f->refs, 1);
    pool_submit(fill_job, f);
  }
}

static void fill_append_locked(Fill *f, Chunk *c)
{
  c->next = NULL;
  if (f->q_tail) {
    f->q_tail->next = c;
  } else {
    f->q_head = c;
  }
  f->q_tail = c;
}

static void fill_enqueue(Fill *f, Chunk *c)
{
  pthread_mutex_lock(&f->lock);
  fill_append_locked(f, c);
  fill_kick(f);
  pthread_mutex_unlock(&f->lock);
}

/* Decides the fill's end once: commit (the whole advertised body arrived) or abort. */
static void fill_finalize(Fill *f, int action)
{
  pthread_mutex_lock(&f->lock);
  if (f->final == FINAL_NONE) {
    f->final = action;
    Chunk *cur = f->cur;
    f->cur = NULL;
    if (cur && cur->len && action == FINAL_COMMIT) {
      fill_append_locked(f, cur); /* in the same critical section: the task sees it before the end */
    } else {
      free(cur);
    }
    fill_kick(f);
  }
  pthread_mutex_unlock(&f->lock);
}

static void fill_write(Fill *f, const uint8_t *d, size_t n)
{
  /* task thread, read lock held */
  if (f->failed || f->cancelled || !g_cache) {
    f->failed = true;
    return;
  }
  dcache_result rc;
  if (!f->w) {
    rc = dcache_writer_open(g_cache, (const uint8_t *)f->key, f->key_len, f->ttl, &f->w);
    if (rc == DCACHE_DECLINED) {
      /* --admission=filtered: the client gets the body; nothing is stored */
      f->w = NULL;
      f->failed = true;
      f->declined = true;
      return;
    }
    if (rc != DCACHE_OK) {
      TSError("[%s] writer_open %.*s: %s: %s", PLUGIN, (int)f->key_len, f->key, dcache_strerror(rc), dcache_last_error_message());
      f->w = NULL;
      f->failed = true;
      return;
    }
  }
  rc = dcache_writer_write(f->w, d, n);
  if (rc != DCACHE_OK) {
    TSError("[%s] writer_write %.*s: %s: %s", PLUGIN, (int)f->key_len, f->key, dcache_strerror(rc), dcache_last_error_message());
    dcache_writer_abort(f->w);
    f->w = NULL;
    f->failed = true;
  }
}

static void fill_job(void *arg)
{
  Fill *f = arg;
  int action = FINAL_NONE;
  for (;;) {
    pthread_mutex_lock(&f->lock);
    Chunk *c = f->q_head;
    if (c) {
      f->q_head = c->next;
      if (!f->q_head) {
        f->q_tail = NULL;
      }
    } else if (f->final != FINAL_NONE && !f->finished) {
      f->finished = true;
      action = f->final;
    } else {
      f->task_scheduled = false;
    }
    pthread_mutex_unlock(&f->lock);
    if (c) {
      pthread_rwlock_rdlock(&g_cache_lock);
      fill_write(f, c->data, c->len);
      pthread_rwlock_unlock(&g_cache_lock);
      free(c);
      continue;
    }
    break;
  }
  if (action == FINAL_NONE) {
    fill_unref(f); /* the task's reference */
    return;
  }

  /* The end of the fill: commit or abort, then leave the map and wake the parked requests. */
  bool stored = false;
  pthread_rwlock_rdlock(&g_cache_lock);
  if (action == FINAL_COMMIT && !f->failed && !f->cancelled && g_cache) {
    if (!f->w) {
      f->failed = true; /* nothing was written: cannot happen, the header is the first chunk */
    } else {
      dcache_result rc = dcache_writer_commit(f->w);
      f->w = NULL;
      if (rc == DCACHE_OK) {
        stored = true;
        hint_set_size(f->key, f->key_len, HINT_PRESENT, f->record_size);
        share_invalidate(key_hash64(f->key, f->key_len));
      } else if (rc == DCACHE_DECLINED) {
        f->declined = true; /* over --write-budget, its length now known */
      } else {
        TSError("[%s] commit of %.*s failed: %s %s", PLUGIN, (int)f->key_len, f->key, dcache_strerror(rc), dcache_last_error_message());
      }
    }
  }
  if (f->w) {
    dcache_writer_abort(f->w);
    f->w = NULL;
  }
  pthread_rwlock_unlock(&g_cache_lock);
  if (f->declined) {
    stat_add(ST_DECLINED, 1);
  } else if (stored || f->started) {
    stat_add(stored ? ST_STORES : ST_ABORTS, 1);
  }
  TSDebug(PLUGIN, "fill %s: %.*s (%" PRIu64 "/%" PRIu64 " bytes)", stored ? "stored" : "aborted", (int)f->key_len, f->key, f->received,
          f->expected);

  pthread_mutex_lock(&g_fills_lock);
  Fill **pp = fill_slot(f->key, f->key_len);
  if (*pp == f) {
    *pp = f->map_next;
  }
  Op *waiters = f->waiters;
  f->waiters = NULL;
  pthread_mutex_unlock(&g_fills_lock);
  fill_unref(f); /* the map's reference */
  while (waiters) { /* each to a worker: their lookups run in parallel */
    Op *op = waiters;
    waiters = op->next;
    op->st->no_collapse = !stored; /* not stored: all of them to the origin, no new queue */
    op_schedule(op);
  }
  fill_unref(f); /* the task's reference */
}

/* The sink: a data-only transform on TS_HTTP_RESPONSE_CLIENT_HOOK (the response is untouched). */
static void sink_take(Fill *f, TSIOBufferReader reader, int64_t n)
{
  while (n > 0) {
    if (!f->cur) {
      uint64_t left = f->expected - f->received;
      f->cur = chunk_new(left < cfg.chunk ? (size_t)left : cfg.chunk);
    }
    size_t space = f->cur->cap - f->cur->len;
    size_t m = (size_t)n < space ? (size_t)n : space;
    TSIOBufferReaderCopy(reader, f->cur->data + f->cur->len, (int64_t)m);
    TSIOBufferReaderConsume(reader, (int64_t)m);
    f->cur->len += m;
    f->received += m;
    n -= (int64_t)m;
    if (f->cur->len == f->cur->cap) {
      Chunk *c = f->cur;
      f->cur = NULL;
      fill_enqueue(f, c);
    }
  }
}

static int sink_handler(TSCont contp, TSEvent event, void *edata)
{
  (void)edata;
  Fill *f = TSContDataGet(contp);
  if (TSVConnClosedGet(contp)) {
    if (f) {
      fill_finalize(f, f->received == f->expected ? FINAL_COMMIT : FINAL_ABORT);
      TSContDataSet(contp, NULL);
      fill_unref(f);
    }
    TSContDestroy(contp);
    return 0;
  }
  TSVIO input_vio = TSVConnWriteVIOGet(contp);
  switch (event) {
  case TS_EVENT_ERROR:
    if (f) {
      fill_finalize(f, FINAL_ABORT);
    }
    TSContCall(TSVIOContGet(input_vio), TS_EVENT_ERROR, input_vio);
    break;
  case TS_EVENT_VCONN_WRITE_COMPLETE:
    break;
  default: /* TS_EVENT_IMMEDIATE, WRITE_READY: data may be there */
    if (!TSVIOBufferGet(input_vio)) {
      if (f) {
        fill_finalize(f, f->received == f->expected ? FINAL_COMMIT : FINAL_ABORT);
      }
      break;
    }
    TSIOBufferReader reader = TSVIOReaderGet(input_vio);
    int64_t avail = TSIOBufferReaderAvail(reader);
    int64_t todo = TSVIONTodoGet(input_vio);
    int64_t n = avail < todo ? avail : todo;
    if (n > 0) {
      if (f && f->final == FINAL_NONE && f->received + (uint64_t)n <= f->expected) {
        sink_take(f, reader, n);
      } else {
        if (f && f->final == FINAL_NONE) {
          fill_finalize(f, FINAL_ABORT); /* more than advertised */
        }
        TSIOBufferReaderConsume(reader, n);
      }
      TSVIONDoneSet(input_vio, TSVIONDoneGet(input_vio) + n);
    }
    if (TSVIONTodoGet(input_vio) > 0) {
      TSContCall(TSVIOContGet(input_vio), TS_EVENT_VCONN_WRITE_READY, input_vio);
    } else {
      if (f) {
        fill_finalize(f, f->received == f->expected ? FINAL_COMMIT : FINAL_ABORT);
      }
      TSContCall(TSVIOContGet(input_vio), TS_EVENT_VCONN_WRITE_COMPLETE, input_vio);
    }
    break;
  }
  return 0;
}

/* ------------------------------------------------------------------------------------------
 * Cacheability of an origin response
 * ------------------------------------------------------------------------------------------ */
typedef struct {
  bool ok;
  uint64_t ttl, age, content_length;
} Cacheability;

static Cacheability response_cacheability(TSMBuffer bufp, TSMLoc hdr)
{
  Cacheability c = {0};
  bool has_max_age = false, has_s_maxage = false;
  uint64_t max_age = 0, s_maxage = 0;
  TSMLoc f;

  if (TSHttpHdrStatusGet(bufp, hdr) != TS_HTTP_STATUS_OK) {
    return c;
  }
  /* Cache-Control: every value of every Cache-Control field */
  f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_CACHE_CONTROL, TS_MIME_LEN_CACHE_CONTROL);
  while (f) {
    int nv = TSMimeHdrFieldValuesCount(bufp, hdr, f);
    for (int i = 0; i < nv; i++) {
      int len = 0;
      const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, i, &len);
      size_t n = (size_t)len;
      v = trim(v, &n);
      const char *eq = memchr(v, '=', n);
      size_t name_n = eq ? (size_t)(eq - v) : n;
      if (name_is(v, name_n, "no-store") || name_is(v, name_n, "private") || name_is(v, name_n, "no-cache")) {
        TSHandleMLocRelease(bufp, hdr, f);
        return c;
      }
      if (eq && (name_is(v, name_n, "max-age") || name_is(v, name_n, "s-maxage"))) {
        size_t an = n - name_n - 1;
        const char *a = trim(eq + 1, &an);
        /* The quoted form, max-age="60" (RFC 9111 5.2). Traffic Server hands the value on
         * without its closing quote (max-age="60), so that one is optional here. */
        if (an >= 1 && a[0] == '"') {
          a++;
          an--;
          if (an && a[an - 1] == '"') {
            an--;
          }
        }
        uint64_t x;
        if (parse_u64(a, an, &x)) {
          if (name_is(v, name_n, "max-age")) {
            has_max_age = true;
            max_age = x;
          } else {
            has_s_maxage = true;
            s_maxage = x;
          }
        }
      }
    }
    TSMLoc next = TSMimeHdrFieldNextDup(bufp, hdr, f);
    TSHandleMLocRelease(bufp, hdr, f);
    f = next;
  }
  /* No Set-Cookie; no Vary (one object per URL here) */
  if ((f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_SET_COOKIE, TS_MIME_LEN_SET_COOKIE))) {
    TSHandleMLocRelease(bufp, hdr, f);
    return c;
  }
  if ((f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_VARY, TS_MIME_LEN_VARY))) {
    TSHandleMLocRelease(bufp, hdr, f);
    return c;
  }
  /* Content-Length is required: the fill commits only when exactly that many bytes arrived */
  if (!(f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_CONTENT_LENGTH, TS_MIME_LEN_CONTENT_LENGTH))) {
    return c;
  }
  {
    int len = 0;
    const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, -1, &len);
    size_t n = (size_t)len;
    v = trim(v, &n);
    bool good = parse_u64(v, n, &c.content_length);
    TSHandleMLocRelease(bufp, hdr, f);
    if (!good || c.content_length > cfg.max_object) {
      return c;
    }
  }
  if ((f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_TRANSFER_ENCODING, TS_MIME_LEN_TRANSFER_ENCODING))) {
    TSHandleMLocRelease(bufp, hdr, f);
    return c;
  }
  /* Freshness lifetime: s-maxage, max-age, or Expires - Date */
  uint64_t lifetime;
  uint64_t now = now_secs();
  if (has_s_maxage) {
    lifetime = s_maxage;
  } else if (has_max_age) {
    lifetime = max_age;
  } else if ((f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_EXPIRES, TS_MIME_LEN_EXPIRES))) {
    time_t exp = TSMimeHdrFieldValueDateGet(bufp, hdr, f);
    TSHandleMLocRelease(bufp, hdr, f);
    time_t date = (time_t)now;
    TSMLoc df = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_DATE, TS_MIME_LEN_DATE);
    if (df) {
      time_t d = TSMimeHdrFieldValueDateGet(bufp, hdr, df);
      if (d > 0) {
        date = d;
      }
      TSHandleMLocRelease(bufp, hdr, df);
    }
    if (exp <= date) {
      return c;
    }
    lifetime = (uint64_t)(exp - date);
  } else {
    return c;
  }
  if ((f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_AGE, TS_MIME_LEN_AGE))) {
    int len = 0;
    const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, -1, &len);
    size_t n = (size_t)len;
    v = trim(v, &n);
    uint64_t a;
    if (parse_u64(v, n, &a)) {
      c.age = a;
    }
    TSHandleMLocRelease(bufp, hdr, f);
  }
  if (lifetime <= c.age) {
    return c;
  }
  c.ttl = lifetime - c.age;
  c.ok = true;
  return c;
}

static bool hop_by_hop(const char *name, size_t n)
{
  static const char *const skip[] = {"connection", "keep-alive",        "proxy-connection", "transfer-encoding", "te",
                                     "trailer",    "upgrade",           "proxy-authenticate", "content-length",  "age",
                                     "x-dcache",   "proxy-authorization", NULL};
  for (int i = 0; skip[i]; i++) {
    if (name_is(name, n, skip[i])) {
      return true;
    }
  }
  return false;
}

/* The header block: "HTTP/1.1 <status> <reason>\r\n" + the kept header lines. */
static bool header_block(TSMBuffer bufp, TSMLoc hdr, Str *out)
{
  TSIOBuffer b = TSIOBufferCreate();
  TSIOBufferReader rd = TSIOBufferReaderAlloc(b);
  TSHttpHdrPrint(bufp, hdr, b);
  int64_t n = TSIOBufferReaderAvail(rd);
  char *txt = xmalloc((size_t)n + 1);
  TSIOBufferReaderCopy(rd, txt, n);
  txt[n] = 0;
  TSIOBufferReaderFree(rd);
  TSIOBufferDestroy(b);

  int rlen = 0;
  const char *reason = TSHttpHdrReasonGet(bufp, hdr, &rlen);
  str_fmt(out, "HTTP/1.1 %d ", (int)TSHttpHdrStatusGet(bufp, hdr));
  str_add(out, reason ? reason : "", reason ? (size_t)rlen : 0);
  str_cat(out, "\r\n");

  const char *p = memmem(txt, (size_t)n, "\r\n", 2); /* skip the status line */
  const char *end = txt + n;
  p = p ? p + 2 : end;
  while (p < end) {
    const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
    size_t ll = e ? (size_t)(e - p) : (size_t)(end - p);
    if (ll == 0) {
      break; /* the blank line */
    }
    const char *colon = memchr(p, ':', ll);
    if (colon && !hop_by_hop(p, (size_t)(colon - p))) {
      str_add(out, p, ll);
      str_cat(out, "\r\n");
    }
    p += ll + 2;
  }
  free(txt);
  return out->len <= MAX_HEADER_BLOCK;
}

static Fill *fill_new(const char *key, size_t key_len)
{
  Fill *f = xcalloc(1, sizeof *f);
  atomic_init(&f->refs, 1); /* the map's */
  pthread_mutex_init(&f->lock, NULL);
  f->key = xmalloc(key_len);
  memcpy(f->key, key, key_len);
  f->key_len = key_len;
  return f;
}

/* A miss of a GET that may be stored: registers a pending fill owned by this transaction, so
 * that requests for the URL that come before the response wait for it (one origin request);
 * or, when another transaction's fill is already registered, parks op behind it.
 * A fill commits (and sets the hint "present") before it leaves the map, so "present" seen
 * here, under the lock, means a commit that the miss's lookup may have missed: look again. */
enum { MISS_GO = 0, MISS_PARKED, MISS_LOOK_AGAIN };
static int miss_collapse(Op *op)
{
  TxnState *st = op->st;
  if (!st->may_fill || st->no_collapse || st->fill) {
    return MISS_GO;
  }
  pthread_mutex_lock(&g_fills_lock);
  Fill **slot = fill_slot(st->key, (size_t)st->key_len);
  if (*slot) {
    op->next = (*slot)->waiters;
    (*slot)->waiters = op;
    pthread_mutex_unlock(&g_fills_lock);
    stat_add(ST_COLLAPSED, 1);
    return MISS_PARKED;
  }
  if (hint_get_h(st->hash, NULL) == HINT_PRESENT) {
    pthread_mutex_unlock(&g_fills_lock);
    return MISS_LOOK_AGAIN;
  }
  Fill *f = fill_new(st->key, (size_t)st->key_len);
  *slot = f;
  atomic_fetch_add(&f->refs, 1); /* the transaction's */
  st->fill = f;
  pthread_mutex_unlock(&g_fills_lock);
  return MISS_GO;
}

/* ------------------------------------------------------------------------------------------
 * Operations run on the workers for a paused transaction: lookup, purge, stats
 * ------------------------------------------------------------------------------------------ */
static void intercept_and_continue(TSHttpTxn txnp, Responder *r)
{
  /* PluginVC moves at most one buffer (32 KiB by default) per event: size it for the
   * response so a typical hit crosses in one step. */
  int64_t n = r->total_out;
  int idx = n <= (32 << 10) ? TS_IOBUFFER_SIZE_INDEX_32K : n <= (128 << 10) ? TS_IOBUFFER_SIZE_INDEX_128K : TS_IOBUFFER_SIZE_INDEX_256K;
  if (idx != TS_IOBUFFER_SIZE_INDEX_32K) {
    TSHttpTxnConfigIntSet(txnp, TS_CONFIG_PLUGIN_VC_DEFAULT_BUFFER_INDEX, idx);
  }
  TSHttpTxnIntercept(r->cont, txnp);
  TSHttpTxnReenable(txnp, TS_EVENT_HTTP_CONTINUE);
}

/* Revalidation of a stored response for a request's no-cache: a conditional GET with the
 * stored validators, made through Traffic Server itself (TSFetchUrl: remap applies) and marked
 * by REVALIDATION_FIELD so that the plugin lets it pass. A 304 serves the stored response; any
 * other answer sends the client's request to the origin, whose response replaces it (so a
 * changed object costs the origin two requests). */
#define REVALIDATION_FIELD "X-Dcache-Revalidation"
enum { REVALIDATION_DONE = 61001, REVALIDATION_FAILED, REVALIDATION_TIMEOUT };

static void revalidation_to_origin(Op *op)
{
  TxnState *st = op->st;
  st->revalidate = false;
  st->may_fill = st->method == M_GET && !st->has_range && !st->req_no_store;
  stat_add(ST_MISSES, 1);
  txn_track(op->txnp);
  TSHttpTxnReenable(op->txnp, TS_EVENT_HTTP_CONTINUE);
}

/* A revalidation in progress: the transaction's op, the request to send, and once answered,
 * whether the answer was 304. */
typedef struct Revalidation {
  Op *op;
  Str request;
  bool answered, not_modified;
} Revalidation;

/* Runs three times, each on a network thread (TSFetchUrl needs an event loop, which the
 * workers lack): sends the request; gets the response (FetchSM holds the continuation's
 * mutex then, so it cannot be destroyed there); acts on it and ends. */
static int revalidation_handler(TSCont contp, TSEvent event, void *edata)
{
  Revalidation *rv = TSContDataGet(contp);
  if (event != TS_EVENT_IMMEDIATE && event != TS_EVENT_TIMEOUT) {
    if ((int)event == REVALIDATION_DONE) {
      int len = 0;
      const char *resp = TSFetchRespGet((TSHttpTxn)edata, &len);
      rv->not_modified = resp && len >= 12 && strncmp(resp, "HTTP/1.", 7) == 0 && memcmp(resp + 8, " 304", 4) == 0;
    }
    rv->answered = true;
    TSContScheduleOnPool(contp, 0, TS_THREAD_POOL_NET);
    return 0;
  }
  if (!rv->answered) {
    /* the client address the fetch appears to come from (ip_allow.yaml; it needs a port) */
    struct sockaddr_in from = {.sin_family = AF_INET, .sin_port = htons(1), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    TSFetchEvent events = {REVALIDATION_DONE, REVALIDATION_FAILED, REVALIDATION_TIMEOUT};
    TSFetchUrl(rv->request.p, (int)rv->request.len, (struct sockaddr const *)&from, contp, AFTER_BODY, events);
    return 0;
  }
  Op *op = rv->op;
  bool not_modified = rv->not_modified;
  free(rv->request.p);
  free(rv);
  TSContDestroy(contp);
  if (not_modified) {
    stat_add(ST_REVALIDATED, 1);
    op->st->revalidate = false;
    op_schedule(op); /* looks it up again and serves it */
  } else {
    revalidation_to_origin(op);
    free(op);
  }
  return 0;
}

/* Starts the conditional request for rec; false if it holds no validator (or the key is not
 * a URL), and then nothing was started. */
static bool revalidation_start(Op *op, const Record *rec)
{
  TxnState *st = op->st;
  const char *block = (const char *)rec->buf + REC_PREFIX;
  size_t etag_len = 0, lm_len = 0;
  const char *etag = block_field(block, rec->hlen, "ETag", &etag_len);
  const char *lm = block_field(block, rec->hlen, "Last-Modified", &lm_len);
  const char *key = st->key, *end = st->key + st->key_len;
  const char *scheme_end = memmem(key, (size_t)st->key_len, "://", 3);
  if ((!etag && !lm) || !scheme_end) {
    return false;
  }
  const char *authority = scheme_end + 3;
  const char *path = memchr(authority, '/', (size_t)(end - authority));
  Revalidation *rv = xcalloc(1, sizeof *rv);
  rv->op = op;
  Str *req = &rv->request;
  str_fmt(req, "GET %.*s HTTP/1.1\r\nHost: %.*s\r\n", path ? (int)(end - path) : 1, path ? path : "/",
          (int)((path ? path : end) - authority), authority);
  if (etag) {
    str_fmt(req, "If-None-Match: %.*s\r\n", (int)etag_len, etag);
  }
  if (lm) {
    str_fmt(req, "If-Modified-Since: %.*s\r\n", (int)lm_len, lm);
  }
  str_cat(req, REVALIDATION_FIELD ": 1\r\n\r\n");
  TSCont cont = TSContCreate(revalidation_handler, TSMutexCreate());
  TSContDataSet(cont, rv);
  TSContScheduleOnPool(cont, 0, TS_THREAD_POOL_NET);
  return true;
}

/* What a lookup's read leads to, on whichever thread read it: LOOKUP_DONE (the transaction
 * is answered or sent on; op may be freed), LOOKUP_KEPT (op now belongs to a fill's waiters
 * or to a revalidation), LOOKUP_AGAIN (a fill stored the URL meanwhile: read it again). */
enum { LOOKUP_DONE, LOOKUP_KEPT, LOOKUP_AGAIN };

static int lookup_answer(Op *op, dcache_result rc, Record *rec, int attempt)
{
  TxnState *st = op->st;
  if (rc == DCACHE_OK && st->revalidate) {
    hint_set_h(st->hash, HINT_PRESENT, rec->total);
    if (revalidation_start(op, rec)) {
      return LOOKUP_KEPT;
    }
    /* No validators stored: the origin answers, and its response replaces the stored one. */
    revalidation_to_origin(op);
    return LOOKUP_DONE;
  }
  if (rc == DCACHE_OK) {
    hint_set_h(st->hash, HINT_PRESENT, rec->total);
    Responder *r = responder_for_hit(st, rec);
    stat_add(ST_HITS, 1);
    txn_release(op->txnp, st);
    intercept_and_continue(op->txnp, r);
    return LOOKUP_DONE;
  }
  if (rc != DCACHE_NOT_FOUND) {
    TSError("[%s] lookup %s: %s: %s (served as a miss)", PLUGIN, st->key, dcache_strerror(rc), dcache_last_error_message());
  }
  st->may_fill = st->method == M_GET && !st->has_range && !st->req_no_store;
  int m = miss_collapse(op);
  if (m == MISS_PARKED) {
    return LOOKUP_KEPT;
  }
  if (m == MISS_LOOK_AGAIN && attempt == 0) {
    return LOOKUP_AGAIN;
  }
  if (rc == DCACHE_NOT_FOUND) {
    hint_set_h(st->hash, HINT_ABSENT, 0);
  }
  stat_add(ST_MISSES, 1);
  txn_track(op->txnp);
  TSHttpTxnReenable(op->txnp, TS_EVENT_HTTP_CONTINUE);
  return LOOKUP_DONE;
}

/* A lookup with blocking reads, on a worker. Returns true when op was kept (see
 * lookup_answer). */
static bool op_lookup(Op *op)
{
  TxnState *st = op->st;
  stat_add(ST_WORKER_LOOKUPS, 1);
  for (int attempt = 0;; attempt++) {
    Record rec = {0};
    dcache_result rc = DCACHE_NOT_FOUND;
    uint64_t size_hint = 0;
    hint_get_h(st->hash, &size_hint);
    pthread_rwlock_rdlock(&g_cache_lock);
    if (g_cache) {
      rc = record_read(st->key, (size_t)st->key_len, size_hint, &rec);
    }
    pthread_rwlock_unlock(&g_cache_lock);
    int next = lookup_answer(op, rc, &rec, attempt);
    record_free(&rec);
    if (next != LOOKUP_AGAIN) {
      return next == LOOKUP_KEPT;
    }
  }
}

/* ---- lookups on the network thread: one dcache queue per thread ----
 * A lookup is submitted to the calling network thread's queue and completes on that thread:
 * the queue sends a byte per completion to a socket (dcache_queue_notify) that the thread's
 * own NetHandler reads through a TSVConn (TSVConnFdCreate), whose read event reaps it. No
 * other thread is woken for a hit, and the reads of many transactions are in flight at once
 * (io_uring). A thread whose queue cannot be made (or whose fd channel fails) hands its
 * lookups to the workers. */
#define HIT_QUEUE_DEPTH 1024

/* One read on a queue, and the lookups that wait for it. Requests for the same URL on the
 * same thread share a read, as Traffic Server's own cache shares one for a hot object
 * (measured: a hot 64 KiB URL at 28k req/s read nothing from the disk): a lookup joins the
 * thread's read of the URL in flight, or answers from one completed at most SHARE_MS ago
 * within the same second of the clock, whose URL was neither stored nor purged since (its
 * generation). dcache counts TTLs in whole seconds, so an entry live when it was read stays
 * live for the rest of that second: a shared read answers exactly as a new one would, save
 * for a commit racing it. Only whole reads of records up to SHARE_MAX are shared; each
 * thread keeps at most SHARE_SLOTS of them (direct-mapped by URL hash). */
#define SHARE_SLOTS 64
#define SHARE_MS 100
#define SHARE_MAX (256u << 10)
/* What a queue's completion carries (its user data points to one of these, which begin with
 * their kind). */
enum { QJ_LOOKUP = 1, QJ_PIECE, QJ_PIECE_CHECK };

typedef struct QueueRead {
  int kind; /* QJ_LOOKUP */
  Record rec;
  Op *ops;           /* the lookups waiting for it, through Op.next */
  char *key;         /* of a shared read: the URL it holds (its hash, generation) */
  size_t key_len;
  uint64_t hash, gen;
  bool done;         /* completed: rc, and the bytes in rec if rc is DCACHE_OK */
  bool busy;         /* answering lookups now: not to be replaced meanwhile */
  dcache_result rc;
  uint64_t done_sec; /* the clock's second before the completion was reaped */
  uint64_t done_ms;
} QueueRead;

static uint64_t now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void queue_read_free(QueueRead *qr)
{
  record_free(&qr->rec);
  free(qr->key);
  free(qr);
}

typedef struct HitQueue {
  dcache_queue *q;
  SocketChannel ch; /* reads the other end of the socketpair */
  int notify_fd;    /* the queue's end of the socketpair */
  size_t inflight;
  bool dead;
  QueueRead *shared[SHARE_SLOTS];
} HitQueue;

static __thread HitQueue *tl_hit_queue;
static __thread bool tl_hit_queue_failed;

static void hit_queue_reap(HitQueue *hq, size_t wait_for);

static int hit_queue_handler(TSCont contp, TSEvent event, void *edata)
{
  (void)edata;
  HitQueue *hq = TSContDataGet(contp);
  if (socket_channel_drain(&hq->ch, event)) {
    hit_queue_reap(hq, 0);
  } else {
    /* No more read events: the reads in flight are waited for here, new ones go to the
     * workers. */
    TSError("[%s] lookup queue channel event %d: lookups go to the workers", PLUGIN, event);
    hq->dead = true;
    hit_queue_reap(hq, hq->inflight);
  }
  return 0;
}

/* The calling network thread's queue, made on first use; NULL if there is none. */
static HitQueue *hit_queue_get(void)
{
  if (tl_hit_queue || tl_hit_queue_failed) {
    return tl_hit_queue && !tl_hit_queue->dead ? tl_hit_queue : NULL;
  }
  tl_hit_queue_failed = true;
  dcache_queue *q = NULL;
  dcache_result rc = DCACHE_INVALID_ARGUMENT;
  pthread_rwlock_rdlock(&g_cache_lock);
  if (g_cache) {
    rc = dcache_queue_open(g_cache, HIT_QUEUE_DEPTH, &q);
  }
  pthread_rwlock_unlock(&g_cache_lock);
  if (rc != DCACHE_OK) {
    TSError("[%s] dcache_queue_open: %s %s: lookups go to the workers", PLUGIN, dcache_strerror(rc), dcache_last_error_message());
    return NULL;
  }
  /* The queue's own fd is an eventfd, which a vconn cannot read (recvmsg): the queue sends a
   * byte per completion to one end of a socketpair, and the thread reads the other. */
  HitQueue *hq = xcalloc(1, sizeof *hq);
  int fds[2] = {-1, -1};
  bool ok = socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0 && dcache_queue_notify(q, fds[1]) == DCACHE_OK &&
            socket_channel_open(&hq->ch, fds[0], hit_queue_handler, hq);
  if (!ok) {
    TSError("[%s] no channel for the lookup queue (%s): lookups go to the workers", PLUGIN, fds[0] < 0 ? strerror(errno) : "TSVConnFdCreate");
    dcache_queue_close(q);
    for (int i = 0; i < 2; i++) {
      if (fds[i] >= 0) {
        close(fds[i]);
      }
    }
    free(hq);
    return NULL;
  }
  hq->q = q;
  hq->notify_fd = fds[1];
  TSDebug(PLUGIN, "lookup queue for this network thread: %s", dcache_queue_backend(q) == DCACHE_QUEUE_IO_URING ? "io_uring" : "threads");
  tl_hit_queue_failed = false;
  tl_hit_queue = hq;
  return hq;
}

static void lookup_finish(Op *op, dcache_result rc, Record *rec);

/* Whether qr, the read in op's slot, is of op's URL as it is now. */
static bool queue_read_matches(const QueueRead *qr, const TxnState *st)
{
  return qr->key && qr->hash == st->hash && qr->key_len == (size_t)st->key_len && memcmp(qr->key, st->key, qr->key_len) == 0 &&
         qr->gen == share_gen(st->hash);
}

/* Looks op up on this network thread's queue: joins or reuses the thread's read of the same
 * URL (see QueueRead), else submits a read (`window`: the first window, even if the hints
 * know the size). False when it cannot be submitted: the caller hands op to the workers. */
static bool lookup_submit(Op *op, bool window)
{
  HitQueue *hq = hit_queue_get();
  if (!hq) {
    return false;
  }
  TxnState *st = op->st;
  uint64_t size_hint = 0;
  hint_get_h(st->hash, &size_hint);
  bool shareable = !window && size_hint && size_hint <= SHARE_MAX;
  QueueRead **slot = &hq->shared[st->hash % SHARE_SLOTS];
  QueueRead *qr = *slot;
  if (shareable && qr && queue_read_matches(qr, st)) {
    if (!qr->done) {
      op->next = qr->ops;
      qr->ops = op;
      stat_add(ST_SHARED_LOOKUPS, 1);
      return true;
    }
    if (qr->rc == DCACHE_OK && !qr->busy && now_secs() == qr->done_sec && now_ms() - qr->done_ms <= SHARE_MS) {
      stat_add(ST_SHARED_LOOKUPS, 1);
      qr->busy = true;
      lookup_finish(op, DCACHE_OK, &qr->rec);
      qr->busy = false;
      return true;
    }
  }
  qr = xcalloc(1, sizeof *qr);
  qr->kind = QJ_LOOKUP;
  record_prepare(&qr->rec, size_hint, window);
  const uint8_t *key = (const uint8_t *)st->key;
  size_t klen = (size_t)st->key_len;
  uint64_t ud = (uint64_t)(uintptr_t)qr;
  dcache_result rc = qr->rec.whole ? dcache_submit_get(hq->q, key, klen, qr->rec.buf, qr->rec.cap, ud)
                                   : dcache_submit_get_range(hq->q, key, klen, 0, qr->rec.buf, cfg.window, ud);
  if (rc != DCACHE_OK) {
    if (rc != DCACHE_BUSY && !atomic_load(&g_shutdown)) {
      TSError("[%s] lookup submit %s: %s %s (handed to a worker)", PLUGIN, st->key, dcache_strerror(rc), dcache_last_error_message());
    }
    queue_read_free(qr);
    return false;
  }
  op->next = NULL;
  qr->ops = op;
  if (shareable && (!*slot || ((*slot)->done && !(*slot)->busy))) {
    if (*slot) {
      queue_read_free(*slot);
    }
    qr->key = xmalloc(klen);
    memcpy(qr->key, key, klen);
    qr->key_len = klen;
    qr->hash = st->hash;
    qr->gen = share_gen(st->hash);
    *slot = qr;
  }
  hq->inflight++;
  stat_add(ST_QUEUE_LOOKUPS, 1);
  return true;
}

/* What follows the read of op's lookup (or of a read it shared): the answer, or another
 * read. */
static void lookup_finish(Op *op, dcache_result rc, Record *rec)
{
  int next = lookup_answer(op, rc, rec, op->attempt);
  if (next == LOOKUP_AGAIN) {
    op->attempt++;
    if (!lookup_submit(op, false)) {
      op_schedule(op);
    }
  } else if (next == LOOKUP_DONE) {
    free(op);
  }
}

/* A completed read: answers every lookup waiting for it, or has each read again. A shared
 * read that succeeded stays in its slot for later lookups; others are freed. */
static void queue_read_complete(HitQueue *hq, QueueRead *qr, dcache_result rc, uint64_t len, uint64_t sec)
{
  Op *ops = qr->ops;
  qr->ops = NULL;
  bool retry = rc == DCACHE_BUFFER_TOO_SMALL && qr->rec.whole; /* replaced by a larger value */
  if (rc == DCACHE_OK) {
    Op *first = ops; /* any of them: they share the URL */
    rc = record_check(&qr->rec, first->st->key, (size_t)first->st->key_len, (size_t)len);
  }
  qr->done = true;
  qr->rc = rc;
  qr->done_sec = sec;
  qr->done_ms = now_ms();
  QueueRead **slot = qr->key ? &hq->shared[qr->hash % SHARE_SLOTS] : NULL;
  bool keep = slot && *slot == qr && rc == DCACHE_OK;
  if (!keep && slot && *slot == qr) {
    *slot = NULL; /* before the lookups below, which may submit reads into the slot */
  }
  qr->busy = true;
  while (ops) {
    Op *op = ops;
    ops = op->next;
    if (retry) {
      if (!lookup_submit(op, true)) {
        op_schedule(op);
      }
    } else {
      lookup_finish(op, rc, &qr->rec);
    }
  }
  qr->busy = false;
  if (!keep) {
    queue_read_free(qr);
  }
}

/* A chunk of a large body beyond what the lookup read, read on the queue of the response's
 * network thread: the chunk, then the record's prefix, whose fill id must still be the
 * response's (no version can come back once replaced, so equal ids after the chunk's read
 * mean the chunk is of that version). Then chunk_deliver, as for a worker's chunk. */
typedef struct PieceRead {
  int kind; /* QJ_PIECE, then QJ_PIECE_CHECK */
  Responder *r;
  uint8_t *buf; /* from buf_get */
  size_t len, cap;
  uint8_t prefix[REC_PREFIX];
} PieceRead;

/* Submits the read of value bytes [off, off + len) for r; false if the queue refuses it. */
static bool piece_submit(Responder *r, uint64_t off, size_t len)
{
  HitQueue *hq = r->hq;
  if (hq->dead) {
    return false;
  }
  PieceRead *pr = xcalloc(1, sizeof *pr);
  pr->kind = QJ_PIECE;
  pr->r = r;
  pr->len = len;
  pr->buf = buf_get(len, &pr->cap);
  if (dcache_submit_get_range(hq->q, (const uint8_t *)r->key, r->key_len, off, pr->buf, len, (uint64_t)(uintptr_t)pr) != DCACHE_OK) {
    buf_put(pr->buf, pr->cap);
    free(pr);
    return false;
  }
  hq->inflight++;
  stat_add(ST_QUEUE_CHUNKS, 1);
  return true;
}

static void piece_complete(HitQueue *hq, PieceRead *pr, dcache_result rc, uint64_t len)
{
  Responder *r = pr->r;
  if (pr->kind == QJ_PIECE && rc == DCACHE_OK && len == pr->len) {
    pr->kind = QJ_PIECE_CHECK;
    rc = dcache_submit_get_range(hq->q, (const uint8_t *)r->key, r->key_len, 0, pr->prefix, REC_PREFIX, (uint64_t)(uintptr_t)pr);
    if (rc == DCACHE_OK) {
      hq->inflight++;
      return;
    }
    len = 0; /* not checked: the response ends */
  }
  bool ok = pr->kind == QJ_PIECE_CHECK && rc == DCACHE_OK && len == REC_PREFIX && le64(pr->prefix + 24) == r->fill_id;
  r->chunk = pr->buf;
  r->chunk_cap = pr->cap;
  r->chunk_len = pr->len;
  r->chunk_err = !ok;
  free(pr);
  chunk_deliver(r);
}

/* Reaps what hq has completed (waiting for `wait_for` completions, 0 = none) and completes
 * each read. */
static void hit_queue_reap(HitQueue *hq, size_t wait_for)
{
  dcache_completion done[64];
  for (;;) {
    size_t n = 0;
    size_t min = wait_for < 64 ? wait_for : 64;
    uint64_t sec = now_secs(); /* no later than the check of any entry reaped below */
    dcache_result rc = dcache_queue_reap(hq->q, done, 64, min, &n);
    if (rc != DCACHE_OK) {
      TSError("[%s] lookup queue reap: %s %s", PLUGIN, dcache_strerror(rc), dcache_last_error_message());
      return;
    }
    hq->inflight -= n;
    wait_for -= n < wait_for ? n : wait_for;
    for (size_t i = 0; i < n; i++) {
      void *job = (void *)(uintptr_t)done[i].user_data;
      if (*(int *)job == QJ_LOOKUP) {
        queue_read_complete(hq, job, done[i].result, done[i].len, sec);
      } else {
        piece_complete(hq, job, done[i].result, done[i].len);
      }
    }
    if (n < 64 && !wait_for) {
      return;
    }
  }
}

static void op_purge(Op *op)
{
  TxnState *st = op->st;
  dcache_result rc = DCACHE_NOT_FOUND;
  pthread_mutex_lock(&g_fills_lock);
  Fill *f = *fill_slot(st->key, (size_t)st->key_len);
  if (f) {
    pthread_mutex_lock(&f->lock);
    f->cancelled = true;
    pthread_mutex_unlock(&f->lock);
  }
  pthread_mutex_unlock(&g_fills_lock);
  pthread_rwlock_rdlock(&g_cache_lock);
  if (g_cache) {
    rc = dcache_delete(g_cache, (const uint8_t *)st->key, (size_t)st->key_len);
  }
  pthread_rwlock_unlock(&g_cache_lock);
  hint_set(st->key, (size_t)st->key_len, HINT_ABSENT);
  share_invalidate(st->hash);
  Responder *r;
  if (rc == DCACHE_OK) {
    stat_add(ST_PURGES, 1);
    r = responder_fixed(200, "OK", "text/plain", "purged\n");
  } else if (rc == DCACHE_NOT_FOUND) {
    r = responder_fixed(404, "Not Found", "text/plain", "not in cache\n");
  } else {
    Str s = {0};
    str_fmt(&s, "%s: %s\n", dcache_strerror(rc), dcache_last_error_message());
    r = responder_fixed(500, "Internal Server Error", "text/plain", s.p);
    free(s.p);
  }
  txn_release(op->txnp, op->st);
  intercept_and_continue(op->txnp, r);
}

/* The library's text in `format` (dcache_stats_format) appended to s; false without a cache. */
static bool cache_stats_text(Str *s, uint32_t format)
{
  bool ok = false;
  pthread_rwlock_rdlock(&g_cache_lock);
  if (g_cache) {
    size_t needed = 0;
    dcache_result rc = dcache_stats_format(g_cache, format, NULL, 0, &needed);
    while (rc == DCACHE_BUFFER_TOO_SMALL) {
      size_t room = needed + 1024; /* counters move between the two calls */
      char *text = xmalloc(room);
      rc = dcache_stats_format(g_cache, format, text, room, &needed);
      if (rc == DCACHE_OK) {
        str_add(s, text, needed - 1);
        ok = true;
      }
      free(text);
    }
  }
  pthread_rwlock_unlock(&g_cache_lock);
  return ok;
}

/* The stats URL: JSON, the plugin's counters and the library's (dcache_stats_format) under
 * "dcache"; with ?format=prometheus, the library's Prometheus text and the plugin's counters
 * as dcache_ats_*_total. */
static void op_stats(Op *op)
{
  Str s = {0};
  Responder *r;
  if (op->st->stats_prometheus) {
    cache_stats_text(&s, DCACHE_STATS_PROMETHEUS);
    for (int i = 0; i < ST_COUNT; i++) {
      str_fmt(&s, "# HELP dcache_ats_%s_total %s.\n# TYPE dcache_ats_%s_total counter\ndcache_ats_%s_total %" PRId64 "\n",
              stat_names[i], stat_helps[i], stat_names[i], stat_names[i], (int64_t)atomic_load(&stat_vals[i]));
    }
    r = responder_fixed(200, "OK", "text/plain; version=0.0.4; charset=utf-8", s.p);
  } else {
    str_cat(&s, "{");
    for (int i = 0; i < ST_COUNT; i++) {
      str_fmt(&s, "\"%s\": %" PRId64 ", ", stat_names[i], (int64_t)atomic_load(&stat_vals[i]));
    }
    Str lib = {0};
    if (cache_stats_text(&lib, DCACHE_STATS_JSON)) {
      while (lib.len && lib.p[lib.len - 1] == '\n') {
        lib.p[--lib.len] = 0;
      }
      str_cat(&s, "\"dcache\": ");
      str_add(&s, lib.p, lib.len);
    } else {
      str_cat(&s, "\"dcache\": null");
    }
    free(lib.p);
    str_cat(&s, "}\n");
    r = responder_fixed(200, "OK", "application/json", s.p);
  }
  free(s.p);
  txn_release(op->txnp, op->st);
  intercept_and_continue(op->txnp, r);
}

static void op_run(Op *op)
{
  switch (op->kind) {
  case OP_LOOKUP:
    if (op_lookup(op)) {
      return; /* parked behind a fill */
    }
    break;
  case OP_PURGE:
    op_purge(op);
    break;
  case OP_STATS:
    op_stats(op);
    break;
  }
  free(op);
}

static void op_job(void *arg) { op_run(arg); }

static void op_schedule(Op *op)
{
  op->job.fn = op_job;
  op->job.arg = op;
  op->job.heap = false;
  pool_push(&op->job);
}

/* ------------------------------------------------------------------------------------------
 * Transaction hooks (network threads)
 * ------------------------------------------------------------------------------------------ */
/* Whether the query string q (n bytes, no '?') has the parameter `param` ("name=value"). */
static bool query_has(const char *q, size_t n, const char *param)
{
  size_t plen = strlen(param);
  for (size_t at = 0; at < n;) {
    const char *amp = memchr(q + at, '&', n - at);
    size_t end = amp ? (size_t)(amp - q) : n;
    if (end - at == plen && memcmp(q + at, param, plen) == 0) {
      return true;
    }
    at = end + 1;
  }
  return false;
}

static bool field_present(TSMBuffer bufp, TSMLoc hdr, const char *name, int len)
{
  TSMLoc f = TSMimeHdrFieldFind(bufp, hdr, name, len);
  if (f) {
    TSHandleMLocRelease(bufp, hdr, f);
    return true;
  }
  return false;
}

/* Whether the request's Cache-Control lists `directive`. */
static bool request_cc_has(TSMBuffer bufp, TSMLoc hdr, const char *directive)
{
  TSMLoc f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_CACHE_CONTROL, TS_MIME_LEN_CACHE_CONTROL);
  bool has = false;
  while (f && !has) {
    int nv = TSMimeHdrFieldValuesCount(bufp, hdr, f);
    for (int i = 0; i < nv; i++) {
      int len = 0;
      const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, i, &len);
      size_t n = (size_t)len;
      v = trim(v, &n);
      if (name_is(v, n, directive)) {
        has = true;
      }
    }
    TSMLoc next = TSMimeHdrFieldNextDup(bufp, hdr, f);
    TSHandleMLocRelease(bufp, hdr, f);
    f = next;
  }
  if (f) {
    TSHandleMLocRelease(bufp, hdr, f);
  }
  return has;
}

/* A request's Cache-Control: no-cache, or Pragma: no-cache without Cache-Control (RFC 9111
 * 5.2.1.4, 5.4): a stored response may be used only once the origin has validated it. */
static bool request_no_cache(TSMBuffer bufp, TSMLoc hdr)
{
  if (field_present(bufp, hdr, TS_MIME_FIELD_CACHE_CONTROL, TS_MIME_LEN_CACHE_CONTROL)) {
    return request_cc_has(bufp, hdr, "no-cache");
  }
  TSMLoc f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_PRAGMA, TS_MIME_LEN_PRAGMA);
  bool no_cache = false;
  if (f) {
    int len = 0;
    const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, -1, &len);
    size_t n = (size_t)len;
    v = trim(v, &n);
    no_cache = name_is(v, n, "no-cache");
    TSHandleMLocRelease(bufp, hdr, f);
  }
  return no_cache;
}

/* The request's If-None-Match (every field, joined) and If-Modified-Since, into st. */
static void request_validators(TSMBuffer bufp, TSMLoc hdr, TxnState *st)
{
  Str inm = {0};
  TSMLoc f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_IF_NONE_MATCH, TS_MIME_LEN_IF_NONE_MATCH);
  while (f) {
    int len = 0;
    const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, -1, &len);
    if (inm.len) {
      str_cat(&inm, ", ");
    }
    str_add(&inm, v ? v : "", v ? (size_t)len : 0);
    TSMLoc next = TSMimeHdrFieldNextDup(bufp, hdr, f);
    TSHandleMLocRelease(bufp, hdr, f);
    f = next;
  }
  if (inm.p) {
    str_add(&inm, "", 1); /* NUL-terminated */
    st->if_none_match = inm.p;
  }
  f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_IF_MODIFIED_SINCE, TS_MIME_LEN_IF_MODIFIED_SINCE);
  if (f) {
    time_t t = TSMimeHdrFieldValueDateGet(bufp, hdr, f);
    st->if_modified_since = t > 0 ? t : 0;
    TSHandleMLocRelease(bufp, hdr, f);
  }
}

/* Returns true when the transaction was taken over (it is re-enabled later). */
static bool on_read_request(TSHttpTxn txnp)
{
  TSMBuffer bufp;
  TSMLoc hdr;
  if (atomic_load(&g_shutdown) || TSHttpTxnClientReqGet(txnp, &bufp, &hdr) != TS_SUCCESS) {
    return false;
  }
  if (TSHttpTxnIsInternal(txnp) && field_present(bufp, hdr, REVALIDATION_FIELD, (int)strlen(REVALIDATION_FIELD))) {
    /* the plugin's own conditional request for a stored response: straight to the origin */
    TSHandleMLocRelease(bufp, TS_NULL_MLOC, hdr);
    return false;
  }
  int mlen = 0;
  const char *m = TSHttpHdrMethodGet(bufp, hdr, &mlen);
  int method = 0;
  if (m == TS_HTTP_METHOD_GET) {
    method = M_GET;
  } else if (m == TS_HTTP_METHOD_HEAD) {
    method = M_HEAD;
  } else if (m == TS_HTTP_METHOD_PURGE) {
    method = M_PURGE;
  } else if (m && mlen == 5 && strncasecmp(m, "PURGE", 5) == 0) {
    method = M_PURGE;
  }
  if (!method) {
    TSHandleMLocRelease(bufp, TS_NULL_MLOC, hdr);
    return false;
  }
  bool is_stats = false, stats_prometheus = false;
  if (cfg.stats_path && method == M_GET) {
    TSMLoc url;
    if (TSHttpHdrUrlGet(bufp, hdr, &url) == TS_SUCCESS) {
      int plen = 0, qlen = 0;
      const char *path = TSUrlPathGet(bufp, url, &plen);
      is_stats = path && (size_t)plen == strlen(cfg.stats_path) && memcmp(path, cfg.stats_path, (size_t)plen) == 0;
      const char *query = is_stats ? TSUrlHttpQueryGet(bufp, url, &qlen) : NULL;
      stats_prometheus = query && query_has(query, (size_t)qlen, "format=prometheus");
      TSHandleMLocRelease(bufp, hdr, url);
    }
  }
  TxnState *st = xcalloc(1, sizeof *st);
  st->method = method;
  st->key = TSHttpTxnEffectiveUrlStringGet(txnp, &st->key_len);
  if (!st->key || st->key_len <= 0 || (size_t)st->key_len > DCACHE_MAX_KEY_LEN) {
    /* a URL longer than a dcache key: not cacheable; a PURGE of it finds nothing */
    TSHandleMLocRelease(bufp, TS_NULL_MLOC, hdr);
    txn_state_free(st);
    if (method == M_PURGE) {
      Responder *r = responder_fixed(404, "Not Found", "text/plain", "not in cache\n");
      TSHttpTxnIntercept(r->cont, txnp);
    }
    return false;
  }
  if (method == M_GET) {
    TSMLoc f = TSMimeHdrFieldFind(bufp, hdr, TS_MIME_FIELD_RANGE, TS_MIME_LEN_RANGE);
    if (f) {
      int len = 0;
      const char *v = TSMimeHdrFieldValueStringGet(bufp, hdr, f, -1, &len);
      st->has_range = true;
      /* If-Range: the whole body is a correct answer, so the range is ignored on a hit */
      if (!field_present(bufp, hdr, TS_MIME_FIELD_IF_RANGE, TS_MIME_LEN_IF_RANGE)) {
        st->range = strndup(v ? v : "", v ? (size_t)len : 0);
      }
      TSHandleMLocRelease(bufp, hdr, f);
    }
  }
  if (method != M_PURGE) {
    request_validators(bufp, hdr, st);
    st->revalidate = request_no_cache(bufp, hdr);
  }
  st->req_no_store = field_present(bufp, hdr, TS_MIME_FIELD_AUTHORIZATION, TS_MIME_LEN_AUTHORIZATION) || request_cc_has(bufp, hdr, "no-store");
  TSHandleMLocRelease(bufp, TS_NULL_MLOC, hdr);
  st->hash = key_hash64(st->key, (size_t)st->key_len);
  TSUserArgSet(txnp, g_txn_arg, st);

  Op *op = xcalloc(1, sizeof *op);
  op->txnp = txnp;
  op->st = st;
  if (is_stats) {
    st->stats_prometheus = stats_prometheus;
    op->kind = OP_STATS;
    op_schedule(op);
    return true;
  }
  if (method == M_PURGE) {
    op->kind = OP_PURGE;
    op_schedule(op);
    return true;
  }
  op->kind = OP_LOOKUP;

  /* A fill of this URL in progress: wait for its end, then look up (collapses misses, and
   * makes a request right after a miss see the stored object). */
  pthread_mutex_lock(&g_fills_lock);
  Fill *f = *fill_slot(st->key, (size_t)st->key_len);
  if (f) {
    op->next = f->waiters;
    f->waiters = op;
    pthread_mutex_unlock(&g_fills_lock);
    stat_add(ST_COLLAPSED, 1);
    return true;
  }
  pthread_mutex_unlock(&g_fills_lock);

  /* A URL known to be absent goes to the origin at once: no hand-over for a plain miss. */
  if (hint_get_h(st->hash, NULL) == HINT_ABSENT) {
    st->may_fill = method == M_GET && !st->has_range && !st->req_no_store;
    int mc = miss_collapse(op);
    if (mc == MISS_PARKED) {
      return true; /* a fill of this URL began meanwhile: wait for it */
    }
    if (mc == MISS_GO) {
      free(op);
      stat_add(ST_MISSES, 1);
      txn_track(txnp);
      return false;
    }
    /* stored meanwhile: look it up */
  }
  if (!cfg.hit_queue || !lookup_submit(op, false)) {
    op_schedule(op);
  }
  return true;
}

static void on_read_response(TSHttpTxn txnp)
{
  TxnState *st = TSUserArgGet(txnp, g_txn_arg);
  if (!st || !st->may_fill || atomic_load(&g_shutdown)) {
    return;
  }
  st->may_fill = false;
  Fill *f = st->fill; /* the pending fill this miss registered, if any */
  if (f && f->started) {
    return;
  }
  TSMBuffer bufp;
  TSMLoc hdr;
  Cacheability c = {0};
  Str block = {0};
  bool ok = false;
  if (TSHttpTxnServerRespGet(txnp, &bufp, &hdr) == TS_SUCCESS) {
    c = response_cacheability(bufp, hdr);
    ok = c.ok && header_block(bufp, hdr, &block);
    TSHandleMLocRelease(bufp, TS_NULL_MLOC, hdr);
  }
  if (!ok) {
    free(block.p);
    stat_add(ST_NOT_CACHEABLE, 1);
    if (f) {
      fill_finalize(f, FINAL_ABORT); /* releases the waiters, to the origin */
    }
    return;
  }
  if (!f) {
    /* No pending fill (released from a queue): store unless another fill runs. */
    f = fill_new(st->key, (size_t)st->key_len);
    pthread_mutex_lock(&g_fills_lock);
    Fill **slot = fill_slot(f->key, f->key_len);
    if (*slot) {
      pthread_mutex_unlock(&g_fills_lock);
      free(block.p);
      fill_unref(f);
      return;
    }
    *slot = f;
    pthread_mutex_unlock(&g_fills_lock);
    atomic_fetch_add(&f->refs, 1); /* the transaction's */
    st->fill = f;
  }
  f->ttl = c.ttl;
  f->expected = c.content_length;
  f->record_size = REC_PREFIX + block.len + c.content_length;
  f->started = true;

  /* The first chunk: prefix + header block, then the start of the body. */
  Chunk *first = chunk_new(REC_PREFIX + block.len + (c.content_length < cfg.chunk ? (size_t)c.content_length : cfg.chunk));
  uint8_t *p = first->data;
  memcpy(p, REC_MAGIC, 4);
  put32(p + 4, (uint32_t)block.len);
  put64(p + 8, c.content_length);
  put64(p + 16, now_secs() - c.age);
  put64(p + 24, g_fill_id_base ^ atomic_fetch_add(&g_fill_seq, 1));
  memcpy(p + REC_PREFIX, block.p, block.len);
  first->len = REC_PREFIX + block.len;
  free(block.p);
  f->cur = first;

  if (c.content_length == 0) {
    fill_finalize(f, FINAL_COMMIT);
    return;
  }
  atomic_fetch_add(&f->refs, 1); /* the sink's */
  TSVConn sink = TSTransformCreate(sink_handler, txnp);
  TSContDataSet(sink, f);
  TSHttpTxnHookAdd(txnp, TS_HTTP_RESPONSE_CLIENT_HOOK, sink);
}

static void on_txn_close(TSHttpTxn txnp)
{
  TxnState *st = TSUserArgGet(txnp, g_txn_arg);
  if (!st) {
    return;
  }
  TSUserArgSet(txnp, g_txn_arg, NULL);
  if (st->fill) {
    /* Normally the sink decided already; if it never ran, the fill ends here. */
    Fill *f = st->fill;
    fill_finalize(f, f->started && f->received == f->expected ? FINAL_COMMIT : FINAL_ABORT);
    fill_unref(st->fill);
    st->fill = NULL;
  }
  txn_state_free(st);
}

static int global_handler(TSCont contp, TSEvent event, void *edata)
{
  (void)contp;
  TSHttpTxn txnp = (TSHttpTxn)edata;
  switch (event) {
  case TS_EVENT_HTTP_READ_REQUEST_HDR:
    if (on_read_request(txnp)) {
      return 0; /* re-enabled by a worker or at the fill's end */
    }
    break;
  case TS_EVENT_HTTP_READ_RESPONSE_HDR:
    on_read_response(txnp);
    break;
  case TS_EVENT_HTTP_TXN_CLOSE:
    on_txn_close(txnp);
    break;
  default:
    break;
  }
  TSHttpTxnReenable(txnp, TS_EVENT_HTTP_CONTINUE);
  return 0;
}

/* ------------------------------------------------------------------------------------------
 * Lifecycle: flush, shutdown
 * ------------------------------------------------------------------------------------------ */
static int flush_task(TSCont contp, TSEvent event, void *edata)
{
  (void)contp;
  (void)event;
  (void)edata;
  pthread_rwlock_rdlock(&g_cache_lock);
  if (g_cache) {
    dcache_result rc = dcache_flush(g_cache);
    if (rc != DCACHE_OK) {
      TSError("[%s] flush: %s %s", PLUGIN, dcache_strerror(rc), dcache_last_error_message());
    }
  }
  pthread_rwlock_unlock(&g_cache_lock);
  return 0;
}

static int lifecycle_handler(TSCont contp, TSEvent event, void *edata)
{
  (void)contp;
  (void)edata;
  if (event != TS_EVENT_LIFECYCLE_SHUTDOWN) {
    return 0;
  }
  atomic_store(&g_shutdown, 1);
  pthread_rwlock_wrlock(&g_cache_lock);
  /* No dcache call is in progress now. Abort the open writers, then close. */
  pthread_mutex_lock(&g_fills_lock);
  for (int i = 0; i < FILL_BUCKETS; i++) {
    for (Fill *f = g_fills[i]; f; f = f->map_next) {
      pthread_mutex_lock(&f->lock);
      if (f->w) {
        dcache_writer_abort(f->w);
        f->w = NULL;
      }
      f->failed = true;
      pthread_mutex_unlock(&f->lock);
    }
  }
  pthread_mutex_unlock(&g_fills_lock);
  if (g_cache) {
    dcache_result rc = dcache_close(g_cache);
    g_cache = NULL;
    if (rc == DCACHE_OK) {
      TSNote("[%s] cache closed", PLUGIN);
    } else {
      TSError("[%s] close: %s %s", PLUGIN, dcache_strerror(rc), dcache_last_error_message());
    }
  }
  pthread_rwlock_unlock(&g_cache_lock);
  return 0;
}

static void log_cb(void *userdata, uint32_t level, const char *message)
{
  (void)userdata;
  if (level <= DCACHE_LOG_ERROR) {
    TSError("[%s] dcache: %s", PLUGIN, message);
  } else if (level <= DCACHE_LOG_WARN) {
    TSWarning("[%s] dcache: %s", PLUGIN, message);
  } else if (level <= DCACHE_LOG_INFO) {
    TSNote("[%s] dcache: %s", PLUGIN, message);
  } else {
    TSDebug(PLUGIN, "dcache: %s", message);
  }
}

/* ------------------------------------------------------------------------------------------
 * Plugin entry
 * ------------------------------------------------------------------------------------------ */
/* An option's possible values: a name and what it sets. */
typedef struct {
  const char *name;
  uint32_t value;
} Choice;

/* Sets *out to the value of the choice named v; else logs what `opt` accepts, false. */
static bool parse_choice(const char *opt, const char *v, const Choice *choices, size_t n, uint32_t *out)
{
  Str names = {0};
  for (size_t i = 0; i < n; i++) {
    if (!strcmp(v, choices[i].name)) {
      free(names.p);
      *out = choices[i].value;
      return true;
    }
    str_fmt(&names, "%s%s", i ? ", " : "", choices[i].name);
  }
  TSError("[%s] %s must be one of %s, not '%s'", PLUGIN, opt, names.p, v);
  free(names.p);
  return false;
}

static bool parse_args(int argc, const char *argv[])
{
  cfg.capacity = 256ULL << 20;
  cfg.io_mode = DCACHE_IO_AUTO;
  cfg.max_object = 16ULL << 20;
  cfg.stats_path = strdup("_dcache_stats");
  cfg.flush_ms = 5000;
  cfg.window = 256 << 10;
  cfg.chunk = 1 << 20;
  cfg.threads = 8;
  cfg.hit_queue = 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *eq = strchr(a, '=');
    const char *v = eq ? eq + 1 : "";
    size_t n = eq ? (size_t)(eq - a) : strlen(a);
    uint64_t x;
#define OPT(name) (n == strlen(name) && strncmp(a, name, n) == 0)
    if (OPT("--path")) {
      free(cfg.path);
      cfg.path = strdup(v);
    } else if (OPT("--capacity") && parse_size(v, &x)) {
      cfg.capacity = x;
    } else if (OPT("--max-object-size") && parse_size(v, &x) && x > 0) {
      cfg.max_object = x;
    } else if (OPT("--io-mode")) {
      static const Choice modes[] = {{"auto", DCACHE_IO_AUTO}, {"direct", DCACHE_IO_DIRECT}, {"buffered", DCACHE_IO_BUFFERED}};
      if (!parse_choice("--io-mode", v, modes, 3, &cfg.io_mode)) {
        return false;
      }
    } else if (OPT("--stats-path")) {
      free(cfg.stats_path);
      while (*v == '/') {
        v++;
      }
      cfg.stats_path = *v ? strdup(v) : NULL;
    } else if (OPT("--metrics-textfile") && *v) {
      free(cfg.metrics_textfile);
      cfg.metrics_textfile = strdup(v);
    } else if (OPT("--metrics-interval") && parse_size(v, &x) && x >= 10 && x <= UINT32_MAX) {
      cfg.metrics_interval_ms = (uint32_t)x;
    } else if (OPT("--sync-writes")) {
      cfg.sync_writes = 1;
    } else if (OPT("--reformat")) {
      cfg.reformat = 1;
    } else if (OPT("--write-budget") && parse_size(v, &x)) {
      cfg.write_budget = x;
    } else if (OPT("--admission")) {
      static const Choice admissions[] = {{"all", DCACHE_ADMIT_ALL}, {"filtered", DCACHE_ADMIT_FILTERED}};
      if (!parse_choice("--admission", v, admissions, 2, &cfg.admission)) {
        return false;
      }
    } else if (OPT("--flush-interval") && parse_size(v, &x)) {
      cfg.flush_ms = x * 1000;
    } else if (OPT("--window") && parse_size(v, &x) && x >= 4096 + REC_PREFIX + MAX_HEADER_BLOCK) {
      cfg.window = (size_t)x;
    } else if (OPT("--chunk") && parse_size(v, &x) && x >= 4096 && x <= (256ULL << 20)) {
      cfg.chunk = (size_t)x;
    } else if (OPT("--threads") && parse_size(v, &x) && x >= 1 && x <= 64) {
      cfg.threads = (int)x;
    } else if (OPT("--lookups")) {
      static const Choice lookups[] = {{"queue", 1}, {"workers", 0}};
      if (!parse_choice("--lookups", v, lookups, 2, &cfg.hit_queue)) {
        return false;
      }
    } else {
      TSError("[%s] unknown or bad argument '%s'", PLUGIN, a);
      return false;
    }
#undef OPT
  }
  if (cfg.window < REC_PREFIX + MAX_HEADER_BLOCK) {
    cfg.window = REC_PREFIX + MAX_HEADER_BLOCK;
  }
  if (cfg.window > (2u << 20)) {
    cfg.window = 2u << 20;
  }
  if (!cfg.path || !*cfg.path) {
    TSError("[%s] --path=FILE is required", PLUGIN);
    return false;
  }
  return true;
}

void TSPluginInit(int argc, const char *argv[])
{
  TSPluginRegistrationInfo info;
  info.plugin_name = PLUGIN;
  info.vendor_name = "dcache";
  info.support_email = "dcache@localhost";
  if (TSPluginRegister(&info) != TS_SUCCESS) {
    TSError("[%s] plugin registration failed", PLUGIN);
    return;
  }
  if (!parse_args(argc, argv)) {
    TSError("[%s] not enabled: bad arguments", PLUGIN);
    return;
  }
  for (int i = 0; i < ST_COUNT; i++) {
    char name[128];
    snprintf(name, sizeof name, "plugin.%s.%s", PLUGIN, stat_names[i]);
    if (TSStatFindName(name, &stat_ids[i]) != TS_SUCCESS) {
      stat_ids[i] = TSStatCreate(name, TS_RECORDDATATYPE_INT, TS_STAT_NON_PERSISTENT, TS_STAT_SYNC_COUNT);
    }
  }
  pthread_rwlockattr_t rwa;
  pthread_rwlockattr_init(&rwa);
  pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); /* shutdown is not starved */
  pthread_rwlock_init(&g_cache_lock, &rwa);
  pthread_rwlockattr_destroy(&rwa);
  dcache_set_log_callback(log_cb, NULL);
  dcache_options opts;
  dcache_options_init(&opts);
  opts.io_mode = cfg.io_mode;
  opts.flags = DCACHE_OPEN_CREATE | (cfg.sync_writes ? DCACHE_OPEN_SYNC_WRITES : 0);
  opts.capacity = cfg.capacity;
  opts.max_value_size = cfg.max_object + REC_PREFIX + MAX_HEADER_BLOCK;
  opts.admission = cfg.admission;
  opts.write_budget = cfg.write_budget;
  opts.metrics_textfile = cfg.metrics_textfile;
  opts.metrics_interval_ms = cfg.metrics_interval_ms;
  dcache *c = NULL;
  dcache_result rc = dcache_open(cfg.path, &opts, &c);
  if (rc == DCACHE_INCOMPATIBLE && opts.capacity != 0) {
    /* a cache of another size: keep it (and its objects) rather than reformat */
    TSWarning("[%s] %s; opening it with its own capacity (delete the file to resize)", PLUGIN, dcache_last_error_message());
    opts.capacity = 0;
    rc = dcache_open(cfg.path, &opts, &c);
  }
  if (rc == DCACHE_INCOMPATIBLE && cfg.reformat) {
    /* a dcache of an older format: its objects cannot be read, so start an empty one */
    TSWarning("[%s] %s; formatting it (--reformat)", PLUGIN, dcache_last_error_message());
    opts.capacity = cfg.capacity;
    opts.flags |= DCACHE_OPEN_FORMAT;
    rc = dcache_open(cfg.path, &opts, &c);
  }
  if (rc == DCACHE_INVALID_ARGUMENT) {
    /* max_value_size more than a region of this capacity holds: take what it holds */
    TSWarning("[%s] %s: %s; opening with the cache's largest value size", PLUGIN, cfg.path, dcache_last_error_message());
    opts.max_value_size = 0;
    rc = dcache_open(cfg.path, &opts, &c);
    if (rc == DCACHE_OK) {
      uint64_t mv = dcache_max_value_size(c);
      uint64_t room = mv > REC_PREFIX + MAX_HEADER_BLOCK ? mv - REC_PREFIX - MAX_HEADER_BLOCK : 0;
      if (room < cfg.max_object) {
        TSWarning("[%s] maximum object size lowered from %" PRIu64 " to %" PRIu64 " bytes (capacity %" PRIu64 ")", PLUGIN,
                  cfg.max_object, room, cfg.capacity);
        cfg.max_object = room;
      }
    }
  }
  if (rc != DCACHE_OK) {
    TSError("[%s] cannot open %s: %s: %s (the plugin passes requests through)", PLUGIN, cfg.path, dcache_strerror(rc),
            dcache_last_error_message());
    return;
  }
  g_cache = c;
  if (dcache_alignment(c) > g_read_align) {
    g_read_align = dcache_alignment(c);
  }
  g_whole_max = cfg.window > (size_t)HINT_SIZE_MAX * HINT_SIZE_UNIT ? cfg.window : (size_t)HINT_SIZE_MAX * HINT_SIZE_UNIT;
  TSLifecycleHookAdd(TS_LIFECYCLE_SHUTDOWN_HOOK, TSContCreate(lifecycle_handler, NULL)); /* closes it */
  g_hint_mask = (1ULL << 20) - 1; /* 8 MiB: one word per slot */
  g_hints = calloc(g_hint_mask + 1, sizeof *g_hints);
  g_fill_id_base = ((uint64_t)time(NULL) << 32) ^ ((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&g_fill_seq;
  dcache_stats ds;
  memset(&ds, 0, sizeof ds);
  ds.struct_size = sizeof ds;
  dcache_get_stats(c, &ds);
  TSNote("[%s] opened %s: capacity %" PRIu64 ", %" PRIu64 " entries, %s I/O, alignment %u, max object %" PRIu64 ", %d workers, libdcache %s",
         PLUGIN, cfg.path, (uint64_t)ds.capacity, (uint64_t)ds.entries, dcache_is_direct_io(c) ? "direct" : "buffered", dcache_alignment(c),
         cfg.max_object, cfg.threads, dcache_version());

  if (TSUserArgIndexReserve(TS_USER_ARGS_TXN, PLUGIN, "dcache_ats transaction state", &g_txn_arg) != TS_SUCCESS) {
    TSError("[%s] cannot reserve a transaction argument", PLUGIN);
    return;
  }
  for (int i = 0; i < cfg.threads; i++) {
    if (!TSThreadCreate(pool_worker, NULL)) {
      TSError("[%s] cannot start worker thread %d", PLUGIN, i);
      break;
    }
    g_pool.nthreads++;
  }
  if (g_pool.nthreads == 0) {
    return; /* no worker: the hooks stay off, requests pass through */
  }
  g_txn_cont = TSContCreate(global_handler, NULL);
  TSHttpHookAdd(TS_HTTP_READ_REQUEST_HDR_HOOK, g_txn_cont);
  if (cfg.flush_ms) {
    TSContScheduleEveryOnPool(TSContCreate(flush_task, TSMutexCreate()), (TSHRTime)cfg.flush_ms, TS_THREAD_POOL_TASK);
  }
}
