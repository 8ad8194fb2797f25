/**
 * @file store.h
 * The evidence store: append-only, encrypted segment files of matched face crops and their alert
 * records, written through one io_uring by one store thread, durable before acknowledged,
 * recovered after a crash, and forgotten on schedule.
 *
 * Invariants (DESIGN.md 1 and 5):
 * - Only what the pipeline hands to store_put() is written: a match's crop (JPEG) and its alert
 *   record. No context frame, no non-match ever reaches this API.
 * - Every record is sealed with an AEAD (AES-256-GCM where the CPU has AES-NI, else
 *   XChaCha20-Poly1305) under its deployment's data key; that key is stored only sealed by the
 *   appliance key (a file readable by its owner alone). No crop byte is on disk in the clear.
 * - A put is acknowledged (its callback runs, or store_put() returns 0) only after the write
 *   and an fdatasync covering it completed. Puts are grouped: one fdatasync per group of up to
 *   group_max records or group_deadline_us, whichever comes first; at most one group is in
 *   flight, so a later acknowledged record never sits after an unsynced one.
 * - store_open() scans every segment, drops a torn or corrupt record (counted, never served)
 *   and truncates a torn tail, so that new records follow the last intact one.
 * - On -ENOSPC or -EIO the failing group is cut back off its segment (nothing acknowledged before
 *   it is touched), its puts fail with that error and a counter moves; the caller still raises
 *   the alert, with a handle marked unsaved (store_handle_unsaved()).
 *
 * Threads: every call may be made from any thread. Acknowledgement and deletion callbacks run on
 * the store thread and must not block. Deployment calls and sweeps are run by the store thread
 * between groups (the caller waits), so they never overtake a put queued before them.
 */
#ifndef STORE_H
#define STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/** How a reviewer decided an alert; retention depends on it. */
enum store_outcome {
	STORE_OUTCOME_UNREVIEWED = 0,
	STORE_OUTCOME_CONFIRMED = 1,
	STORE_OUTCOME_REJECTED = 2,
};

/** Why a record went (reported through store_conf.on_delete, for mgmt's audit log). */
enum store_delete_reason {
	STORE_DELETE_RETENTION = 1, /* its outcome's retention period ran out */
	STORE_DELETE_SHRED = 2,     /* its deployment was crypto-shredded */
};

/** What the pipeline knows about an alert; stored encrypted beside the crop. Strings are NUL-terminated. */
struct store_alert {
	uint64_t deployment; /* id of the authorised deployment (store_deployment_open() first) */
	uint64_t time_ns;    /* wall clock of the sighting */
	uint64_t track;      /* the camera's track id */
	int64_t pts;         /* presentation timestamp of the frame, in the stream's time base */
	char camera[32];
	char subject[64];   /* watchlist entry id */
	char watchlist[64]; /* watchlist id and version */
	char metric[16];    /* the model's metric name, e.g. "l2" */
	char model[48];     /* model id */
	float value;        /* raw metric value */
	float threshold;    /* the threshold it was compared with */
	int32_t box[4];     /* x, y, w, h in the frame */
	float quality[4];   /* detector score, sharpness, yaw, pitch */
};

enum store_crop_format {
	STORE_CROP_RGB = 0,  /* packed RGB24, WIDTH*HEIGHT*3 bytes; the store thread JPEG-encodes it */
	STORE_CROP_JPEG = 1, /* already a JPEG; stored as given */
};

/** A face crop, as handed in. The store copies it before store_put*() returns. */
struct store_crop {
	enum store_crop_format format;
	const uint8_t *data;
	size_t len;
	uint32_t width, height; /* RGB only */
};

/**
 * What mgmt keeps with an alert to find its evidence again. `saved` is false when the evidence
 * could not be made durable (store_handle_unsaved()): the alert is still raised.
 */
struct store_handle {
	uint64_t deployment;
	uint64_t seq;     /* store-wide sequence number, unique, increasing */
	uint32_t segment; /* segment number within the deployment */
	uint32_t len;     /* record length on disk */
	uint64_t offset;  /* byte offset in the segment */
	bool saved;
};

/** Called once per deleted record, on the store thread (sweeps and shreds run there); must not block long. */
typedef void store_delete_fn(void *arg, const struct store_handle *h, enum store_outcome outcome,
			     enum store_delete_reason reason);
/** Acknowledgement of store_put_async(): RC is 0 (H durable) or -ENOSPC/-EIO/...; runs on the store thread. */
typedef void store_ack_fn(void *arg, int rc, const struct store_handle *h);
/** The clock retention uses (ns since the epoch); tests pass their own. */
typedef uint64_t store_clock_fn(void *arg);

struct store_conf {
	const char *dir;                /* the store's directory (created if missing) */
	const char *appliance_key_path; /* 32 raw bytes; must be mode 0400/0600 and owned by this uid */
	bool create_appliance_key;      /* make the key file if it is missing (first boot) */
	uint32_t segment_bytes;         /* roll to a new segment past this size (default 64 MiB) */
	uint32_t group_max;             /* records per fdatasync group (default 16) */
	uint32_t group_deadline_us;     /* longest a record waits for its group (default 2000) */
	uint32_t slots;                 /* records in flight, queued or writing (default 64) */
	uint32_t max_crop_bytes;        /* largest crop accepted, RGB or JPEG (default 640*640*3) */
	bool o_direct;                  /* open segments O_DIRECT (falls back to buffered, counted) */
	uint64_t retain_confirmed_s;    /* default 31 days */
	uint64_t retain_rejected_s;     /* default 24 hours */
	uint64_t retain_unreviewed_s;   /* default 24 hours */
	uint32_t jpeg_quality;          /* for RGB crops (default 90) */
	uint32_t sweep_interval_s;      /* the store thread sweeps this often when idle (default 60) */
	store_clock_fn *clock;          /* default CLOCK_REALTIME */
	void *clock_arg;
	bool no_io_uring;               /* write with pwritev+fdatasync, as when io_uring is refused (tests) */
	store_delete_fn *on_delete;     /* may be NULL */
	void *on_delete_arg;
};

/** Counters, summed (see store_stats()). */
#define STORE_COUNTERS(X, P)                                                                   \
	X(P, puts, "records submitted")                                                        \
	X(P, acked, "records acknowledged durable")                                            \
	X(P, groups, "fdatasync groups committed")                                             \
	X(P, bytes, "record bytes written")                                                    \
	X(P, queue_full, "puts refused because every slot was busy (-EAGAIN)")                 \
	X(P, enospc, "puts failed because the disk was full")                                  \
	X(P, eio, "puts failed with an I/O error")                                             \
	X(P, unsaved, "alerts raised with their evidence unsaved")                             \
	X(P, jpeg_fail, "RGB crops the JPEG encoder refused")                                  \
	X(P, recovered, "records found intact on open")                                        \
	X(P, torn_dropped, "torn tail bytes or records dropped on open")                       \
	X(P, corrupt_dropped, "records failing their checksum, never served")                  \
	X(P, resynced_bytes, "bytes skipped after a damaged header, on open")                  \
	X(P, deleted, "records deleted by retention or shredding")                             \
	X(P, fallback_uring, "io_uring refused: pwritev and fdatasync used")                   \
	X(P, fallback_regbuf, "io_uring registered buffers refused: plain writes used")        \
	X(P, fallback_regfile, "io_uring registered files refused: plain fds used")            \
	X(P, fallback_odirect, "O_DIRECT refused by the file system: buffered writes used")    \
	X(P, mlock_fail, "slot memory could not be locked in RAM")

struct store_stats {
#define STORE_STATS_FIELD_(P, name, help) uint64_t name;
	STORE_COUNTERS(STORE_STATS_FIELD_, _)
#undef STORE_STATS_FIELD_
};

/**
 * Open (or create) the store in conf->dir, recover every deployment's segments and start the
 * store thread. Returns 0, -EPERM (key file readable by others or not ours), -EKEYREJECTED (the
 * appliance key does not open a deployment key), -EBUSY (another process has this store open),
 * -ENOMEM, or another -errno with a one-line
 * reason in ERR. *OUT untouched on error.
 */
int store_open(struct store **out, const struct store_conf *conf, char *err, size_t errlen);
/** Finish queued puts (their acks run), stop the thread, scrub keys and slots; sets *ST = NULL. */
void store_close(struct store **st);

/** Make (first time) or load a deployment's sealed data key. Idempotent. */
int store_deployment_open(struct store *st, uint64_t deployment);
/**
 * Crypto-shred: destroy the deployment's key (file and memory), then remove its segments,
 * reporting every record through on_delete. Queued puts of it fail with -ENOENT. Returns 0 or -errno.
 */
int store_deployment_shred(struct store *st, uint64_t deployment);

/**
 * Queue a record. The crop and alert are copied; ACK(ARG, rc, handle) runs once, on the store
 * thread, after the record is durable (rc 0) or has failed. Returns 0 if queued (ack will come),
 * -EAGAIN when every slot is busy, -ENOENT for a deployment not open, -EMSGSIZE for a crop over
 * max_crop_bytes, -EINVAL for a bad crop; no ack comes on an error return.
 */
int store_put_async(struct store *st, const struct store_alert *alert, const struct store_crop *crop,
		    store_ack_fn *ack, void *arg);
/** Queue and wait for the acknowledgement. Returns 0 with *OUT durable, or -errno with *OUT unsaved. */
int store_put(struct store *st, const struct store_alert *alert, const struct store_crop *crop,
	      struct store_handle *out /* OUT */);

/** Fill *H for an alert whose evidence could not be stored: saved = false. */
void store_handle_unsaved(struct store_handle *h /* OUT */, const struct store_alert *alert);

/**
 * Read a record back: the alert into *ALERT and the JPEG into JPEG (CAP bytes), its length into
 * *JPEG_LEN. Returns 0, -ENOENT (unknown, deleted or shredded), -EBADMSG (fails its checksum or
 * its AEAD tag), -ENOBUFS (CAP too small; *JPEG_LEN says how much is needed), -EIO.
 */
int store_get(struct store *st, const struct store_handle *h, struct store_alert *alert /* OUT */,
	      uint8_t *jpeg /* OUT */, size_t cap, size_t *jpeg_len /* OUT */);

/** Record a review decision (durable on return). Returns 0, -ENOENT, -EINVAL, -errno. */
int store_outcome_set(struct store *st, const struct store_handle *h, enum store_outcome outcome);

/**
 * Delete every record past its retention at the store clock's now, on the store thread (which
 * also does it every sweep_interval_s): a tombstone in the deployment's journal, durable, then
 * the record's bytes punched out of its segment, then on_delete; a segment left with no live
 * record is unlinked. Returns the count deleted or -errno.
 */
int store_sweep(struct store *st);

/** Records currently held (not deleted), over every deployment. */
uint64_t store_count(struct store *st);

void store_stats(const struct store *st, struct store_stats *out /* OUT */);

#endif /* STORE_H */
