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
 * - A scan device (match_db_set_device(), e.g. gpu/cuda's) holds a copy of each snapshot, made
 *   before the snapshot is published, so a query sees one version whichever path scans it, and
 *   the device returns the same hits, ranks and values as the CPU scan, bit for bit.
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
	/* The scan device (match_db_set_device), all 0 where none is attached: */
	bool device;               /* one is attached */
	bool device_snapshot;      /* the current snapshot has a device copy (else queries scan on the CPU) */
	uint64_t device_queries;   /* descriptors the device scanned since open */
	uint64_t device_fallbacks; /* descriptors match_query() scanned on the CPU although a device is attached */
	uint64_t device_errors;    /* device searches that failed (-EIO) */
	uint64_t device_bytes;     /* device memory held: copies of the snapshots, contexts' scratch */
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
 * so that match_query() never allocates; where a scan device is attached, its scratch on the
 * device too (if the device cannot make it, this context scans on the CPU). Returns 0, -EINVAL,
 * -ENOMEM, -EAGAIN (threads).
 */
int match_ctx_open(struct match_ctx **out, struct match_db *db, unsigned n_threads, unsigned max_batch);
void match_ctx_close(struct match_ctx **ctx);

/**
 * For each of the N descriptors at Q (n * d floats), the best K (1..MATCH_K_MAX) entries into
 * OUT[i], closest first. Returns N, or -EINVAL if N > max_batch, K is out of range or a
 * descriptor is bad (nothing is written then). Never blocks on writers. Where a scan device is
 * attached and the snapshot has its copy, the scan runs there (the descriptors uploaded, then
 * zeroed there); else, or if the device fails, on the CPU (counted).
 */
int match_query(struct match_ctx *ctx, const float *q, unsigned n, unsigned k, struct match_result *out);

/*
 * The scan device: a copy of the watchlist in another memory (a GPU's) and a search over it, for
 * descriptors that are already there (match_query_device) or that match_query() uploads.
 *
 * The matcher keeps the device copy in step with its own snapshots, piece by piece: a device copy
 * of each immutable segment (its entries and their enrolment numbers, made once, when a snapshot
 * that holds the segment is published), of each bias array (4 bytes an entry: a remove uploads
 * only the bias arrays of the segments it touched) and, per snapshot, a table of the (segment,
 * bias) pairs a search walks. Every write (enrol, remove, purge, load, watchlist change) makes the
 * device copies its new snapshot lacks BEFORE it publishes it: the table is part of the snapshot.
 * If one fails, that snapshot has no table and its queries scan on the CPU (counted in
 * match_stats); the next write tries again. Device copies are released (zeroed, then freed) with
 * the host memory they mirror, after the same grace period: no search can still be reading them.
 *
 * The hooks below, filled in by the device's driver (gpu_cuda_match_attach()), are called:
 * seg_put, bias_put, table_put and release by writers only, one at a time (under the writer lock)
 * and by match_db_close(); ctx_open and ctx_close by match_ctx_open/close; search by
 * match_query*() from several contexts at once, each with its own CTX, never allocating. Handles
 * are opaque to the matcher; NULL from a *_put or ctx_open means failure.
 */
#define MATCH_DEVICE_LANES 16 /* seg_put's layout: blocks of this many entries */
#define MATCH_DEVICE_GROUP 64 /* a segment's capacity is a multiple of this */

struct match_device_seg {
	void *seg;   /* seg_put's handle */
	void *bias;  /* bias_put's handle, for the same capacity */
};

/* One hit of a device search: entry IDX of segment SEG (its index in table_put's array). */
struct match_device_hit {
	uint32_t seg;
	uint32_t idx;
	float value;   /* the metric, recomputed in double as match_query() does */
};

struct match_device_ops {
	/*
	 * A copy of a segment of CAP entries of D floats: X in the matcher's layout (block b of
	 * MATCH_DEVICE_LANES entries holds dimension k of its entries at x[(b * d + k) * LANES + lane])
	 * and SEQ, their enrolment numbers (the tie-break).
	 */
	void *(*seg_put)(void *dev, const float *x, const uint64_t *seq, uint32_t cap, unsigned d);
	/* A copy of a bias array: CAP floats, ||x||^2 (L2), 0 (cosine) or +inf (removed or padding). */
	void *(*bias_put)(void *dev, const float *bias, uint32_t cap);
	/* A snapshot's table: the N pairs a search walks, in this order (N may be 0). */
	void *(*table_put)(void *dev, const struct match_device_seg *segs, unsigned n);
	/* Zero the device memory behind a handle of one of the three, then free it. */
	void (*release)(void *dev, void *handle);
	/* Scratch for searches of up to MAX_BATCH descriptors of D floats under METRIC. */
	void *(*ctx_open)(void *dev, unsigned d, enum match_metric metric, unsigned max_batch);
	void (*ctx_close)(void *dev, void *ctx); /* zeroes it first */
	/*
	 * The best K entries of TABLE for each of the N (1..max_batch) descriptors at Q, device
	 * memory (host memory where Q_HOST): as match_query() ranks them, refusing bad descriptors
	 * as it does, normalising under cosine as it does. Row j's hits into HIT[j * MATCH_K_MAX ..],
	 * best first, how many into GOT[j]. Every copy of the descriptors and all per-query scratch
	 * is zeroed before it returns; Q itself is left as it was. Returns 0, -EINVAL (a bad
	 * descriptor: HIT and GOT untouched) or -EIO.
	 */
	int (*search)(void *dev, void *ctx, const void *table, const float *q, bool q_host, unsigned n, unsigned k,
		      struct match_device_hit *hit /* OUT */, unsigned *got /* OUT */);
	uint64_t (*bytes)(void *dev); /* device memory held now */
	void (*close)(void *dev);     /* after every handle and context is released */
};

/**
 * Attach a scan device: OPS (every hook set; it must outlive the matcher) over DEV. Call it before
 * any context is opened (-EBUSY otherwise, or if one is attached already); it publishes the
 * current watchlist again with its device copy. Returns 0 (the snapshot may still lack its
 * device copy, if the device could not hold it: see match_stats), -EINVAL, -EBUSY, -ENOMEM, with
 * a reason in ERR. On success the matcher owns DEV: match_db_close() calls ops->close(dev) last.
 * On error DEV stays the caller's.
 */
int match_db_set_device(struct match_db *db, const struct match_device_ops *ops, void *dev, char *err,
			size_t errlen);

/**
 * match_query() for descriptors in the device's memory (Q: n * d floats, row-major, where the
 * device's face nets left them; they never come to the host), complete when it is called: the
 * search runs on the context's own stream, so the stream that wrote Q must be synchronised first.
 * The same hits, ranks, values and passes, the same refusal of bad descriptors (-EINVAL, nothing
 * written), on the current snapshot's device copy. Q is not written; the device's copies of it
 * are zeroed before it returns. Returns N; -EINVAL; -ENODEV where there is no device, the context
 * has no device scratch or the current snapshot has no device copy, or -EIO where the device
 * failed: in both cases nothing was written, and the caller fetches the descriptors and calls
 * match_query().
 */
int match_query_device(struct match_ctx *ctx, const float *q, unsigned n, unsigned k, struct match_result *out);

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
