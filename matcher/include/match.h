/**
 * @file match.h
 * The watchlist matcher: for each face descriptor, the best k entries of the active deployment's
 * watchlists, exactly as fp32 brute force ranks them, and whether each passes its watchlist's
 * threshold.
 *
 * Invariants:
 * - Exact: the ranking key of entry x for query q is ||x||^2 - 2 q.x (L2) or -q.x (cosine, on
 *   unit vectors), computed in fp32 as one fused multiply-add chain in dimension order. Every
 *   kernel (portable C, AVX-512) computes the same chain, so they return bit-identical keys and the
 *   same entries. Ties are broken by enrolment order (earlier first). The reported value is the
 *   metric recomputed directly in double for the returned entries: the L2 distance (not squared),
 *   or the cosine similarity.
 * - Lock-free reads: match_query() takes no lock and makes no syscall while it scans (it may wake
 *   its own idle workers). It sees one snapshot of the watchlist, published atomically by
 *   enroll/remove/purge/load, which never wait for a scan; replaced memory is zeroed and freed by a
 *   later writer once its grace period is over (epochs on C11 atomics). match_purge() and
 *   match_db_close() wait for the grace period, so they return with every descriptor zeroed.
 * - Writers (enroll, remove, purge, load, watchlist changes) are serialised among themselves by a
 *   mutex; each is all-or-nothing: on error nothing is published.
 * - Bad input is refused whole with -EINVAL (and a one-line reason where an err buffer is given):
 *   a descriptor with a NaN, an infinite value or |v| > MATCH_VALUE_MAX, a zero vector under
 *   cosine, an empty or over-long subject, an unknown watchlist (-ENOENT).
 * - Descriptors are biometric data: every buffer that held one is zeroed before it is freed.
 */
#ifndef MATCH_H
#define MATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MATCH_K_MAX 8          /* best k per query, at most */
#define MATCH_D_MAX 1024       /* descriptor dimension: a multiple of 16, at most this */
#define MATCH_SUBJECT_MAX 64   /* subject id: 1..64 bytes, no NUL inside */
#define MATCH_MODEL_MAX 31     /* model id: 1..31 bytes */
#define MATCH_SHARDS_MAX 64
#define MATCH_THREADS_MAX 64
#define MATCH_VALUE_MAX 1e16f  /* larger magnitudes could overflow a squared norm in fp32 */

enum match_metric {
	MATCH_METRIC_L2 = 0,     /* euclidean distance on raw descriptors; lower is closer */
	MATCH_METRIC_COSINE = 1, /* cosine similarity; higher is closer */
};

enum match_kernel {
	MATCH_KERNEL_AUTO = 0, /* the fastest the CPU can run (cpuid) */
	MATCH_KERNEL_REF,      /* portable C */
	MATCH_KERNEL_AVX512,   /* AVX-512F; -ENOTSUP where the CPU lacks it */
};

struct match_db_conf {
	unsigned d;                /* 16..MATCH_D_MAX, a multiple of 16 */
	enum match_metric metric;
	unsigned n_shards;         /* 1..MATCH_SHARDS_MAX; 0 means 1 */
	const char *model;         /* model id, e.g. "face-api-1.7.15": 1..MATCH_MODEL_MAX bytes */
	enum match_kernel kernel;
};

/** One descriptor to enrol. The matcher copies all of it; the caller keeps ownership. */
struct match_entry {
	const char *subject;   /* 1..MATCH_SUBJECT_MAX bytes, NUL-terminated */
	uint32_t watchlist;    /* set by match_watchlist_set() first */
	const float *desc;     /* d values */
};

struct match_hit {
	char subject[MATCH_SUBJECT_MAX + 1];
	uint32_t watchlist;
	float value;           /* L2 distance, or cosine similarity */
	bool pass;             /* value within the threshold of its watchlist */
	uint64_t seq;          /* enrolment sequence number (the tie-break) */
};

struct match_result {
	unsigned n;            /* min(k, live entries) */
	struct match_hit hit[MATCH_K_MAX];
};

struct match_stats {
	uint64_t entries;      /* live entries in the current snapshot */
	uint64_t bytes;        /* memory held by the current snapshot's shards */
	uint64_t segments;
	uint64_t queries;      /* descriptors scanned since open */
	uint64_t batches;
	uint64_t refused;      /* calls refused for bad input */
	uint64_t generation;   /* snapshots published since open */
	unsigned n_shards;
	uint64_t shard_entries[MATCH_SHARDS_MAX];
	uint64_t shard_ns[MATCH_SHARDS_MAX]; /* time spent scanning each shard since open */
};

struct match_db;
struct match_ctx;

/** Open an empty matcher. Returns 0, -EINVAL (bad conf, reason in ERR), -ENOTSUP, -ENOMEM; *OUT untouched on error. */
int match_db_open(struct match_db **out, const struct match_db_conf *conf, char *err, size_t errlen);
/** Close: no context may be open on it. Zeroes every descriptor. Sets *DB to NULL. */
void match_db_close(struct match_db **db);

/** Create or update watchlist ID with its THRESHOLD (finite). Returns 0 or -EINVAL/-ENOMEM/-ENOSPC. */
int match_watchlist_set(struct match_db *db, uint32_t id, float threshold);
/** The threshold of watchlist ID into *OUT: 0, or -ENOENT. Takes the writer lock: not for the scan path. */
int match_watchlist_threshold(struct match_db *db, uint32_t id, float *out /* OUT */);

/**
 * Enrol N entries in one snapshot. Returns N, or -EINVAL/-ENOENT (reason in ERR) or -ENOMEM, in
 * which case nothing was enrolled.
 */
int match_enroll(struct match_db *db, const struct match_entry *e, unsigned n, char *err, size_t errlen);

/** Remove every entry of SUBJECT. Returns the number removed (0: unknown subject), or -errno. */
int match_remove_subject(struct match_db *db, const char *subject);
/** Remove watchlist ID and all its entries. Returns the number of entries removed, or -ENOENT. */
int match_remove_watchlist(struct match_db *db, uint32_t id);
/** Remove every entry and watchlist; returns when their memory is zeroed and freed. */
int match_purge(struct match_db *db);

/**
 * A query context: one per querying thread (a context is used by one thread at a time; at most
 * 64 contexts per matcher, -EAGAIN beyond). It owns N_THREADS - 1 worker threads (the caller
 * is the first) that scan the shards of a batch in parallel, and scratch for MAX_BATCH queries,
 * so that match_query() never allocates. Returns 0, -EINVAL, -ENOMEM, -EAGAIN (threads).
 */
int match_ctx_open(struct match_ctx **out, struct match_db *db, unsigned n_threads, unsigned max_batch);
void match_ctx_close(struct match_ctx **ctx);

/**
 * For each of the N descriptors at Q (n * d floats), the best K (1..MATCH_K_MAX) entries into
 * OUT[i], closest first. Returns N, or -EINVAL if N > max_batch, K is out of range or a
 * descriptor is bad (nothing is written then). Never blocks on writers.
 */
int match_query(struct match_ctx *ctx, const float *q, unsigned n, unsigned k, struct match_result *out);

void match_stats_get(struct match_db *db, struct match_stats *out /* OUT */);
/** "ref" or "avx512": the kernel this matcher scans with. */
const char *match_kernel_name(const struct match_db *db);
/** Whether the CPU can run KERNEL (cpuid and the OS's saved state). */
bool match_kernel_supported(enum match_kernel kernel);

/*
 * The watchlist file (little-endian):
 *   "VGWLIST\0" magic, u32 version (1), u32 header size (64), char model[32] (NUL-padded),
 *   u32 d, u32 metric, u32 n_watchlists, u32 n_entries,
 *   n_watchlists x { u32 id, f32 threshold },
 *   n_entries x { char subject[64] (NUL-padded), u32 watchlist, f32 desc[d] },
 *   u8 sha256[32] of every byte before it.
 * Limits: n_watchlists <= 65536, n_entries <= 16M, the size must match exactly.
 */
#define MATCH_FILE_VERSION 1u

struct match_watchlist_def {
	uint32_t id;
	float threshold;
};

/**
 * Validate the whole file at BUF and, only if all of it is good (checksum, sizes, model id, d
 * and metric equal to the matcher's, finite values, known and unique watchlists), set its
 * watchlists and enrol its entries in one snapshot. Returns the number of entries, or -EINVAL /
 * -EBADMSG (corrupt, reason in ERR) / -ENOMEM; on error nothing changed.
 */
int match_load(struct match_db *db, const void *buf, size_t len, char *err, size_t errlen);
/** match_load() on the file at PATH (at most 16 GiB); -errno of open/read otherwise. */
int match_load_file(struct match_db *db, const char *path, char *err, size_t errlen);

/**
 * Encode a watchlist file into a malloc()ed buffer *OUT of *OUTLEN bytes (the caller frees it, zeroing
 * it first). Returns 0, -EINVAL (bad entry, reason in ERR) or -ENOMEM.
 */
int match_file_encode(const char *model, unsigned d, enum match_metric metric, const struct match_watchlist_def *wl,
		      unsigned n_wl, const struct match_entry *e, unsigned n, void **out /* OUT */,
		      size_t *outlen /* OUT */, char *err, size_t errlen);

#endif /* MATCH_H */
