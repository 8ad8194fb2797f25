/*
 * Private to store/: the on-disk format and the parser recovery uses (and the fuzz target feeds),
 * then the running store's layout and the functions its files (store_*.c) share.
 *
 * A segment file:   [segment header, padded to ALIGN] [record, padded to ALIGN] ...
 * A record:         [header, 72 bytes] [payload: LEN bytes]
 * Every integer is little-endian. ALIGN is 8, or 4096 for O_DIRECT segments; padding is zeros.
 *
 * Record header (72 bytes):
 *   0 magic 'VGR1'   4 version u16   6 type u8   7 cipher u8   8 len u32   12 hcrc u32
 *  16 seq u64       24 deployment u64   32 time_ns u64 (store clock at put, for retention)
 *  40 nonce[24]     64 crc u32   68 reserved u32 (zero)
 * hcrc = crc32c of the 72 header bytes with hcrc and crc zeroed: a header that passes it gives a
 * length the scanner can trust and skip over even when the payload is damaged.
 * crc = crc32c of the header (hcrc filled, crc zeroed) then the payload: torn or flipped bytes
 * anywhere in the record fail it, without the key.
 *
 * Segment header (64 bytes): 0 magic 'VGS1'  4 version u16  6 align_log2 u8  7 kind u8
 *   8 deployment u64  16 segment u32  20 reserved u32  24 created_ns u64  32..60 zero  60 crc u32
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include <liburing.h>
#include <pthread.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <turbojpeg.h>

#include "store.h"
#include "vg_counter.h"

#define STORE_REC_MAGIC 0x31524756u /* "VGR1" */
#define STORE_SEG_MAGIC 0x31534756u /* "VGS1" */
#define STORE_VERSION 1
#define STORE_REC_HDR 72
#define STORE_SEG_HDR 64
#define STORE_NONCE 24
#define STORE_REC_MAX_LEN (16u << 20) /* no record is larger; a bigger length is damage */

enum store_rec_type {
	STORE_REC_EVIDENCE = 1, /* alert + JPEG, sealed */
	STORE_REC_OUTCOME = 2,  /* meta journal: seq, outcome */
	STORE_REC_DELETE = 3,   /* meta journal: seq, reason (a tombstone) */
};

enum store_cipher {
	STORE_CIPHER_NONE = 0, /* meta journal records: no biometric content */
	STORE_CIPHER_AES256GCM = 1,
	STORE_CIPHER_XCHACHA20POLY1305 = 2,
};

enum store_seg_kind { STORE_SEG_EVIDENCE = 1, STORE_SEG_META = 2 };

struct store_rec_hdr {
	uint16_t version;
	uint8_t type, cipher;
	uint32_t len;
	uint64_t seq, deployment, time_ns;
	uint8_t nonce[STORE_NONCE];
};

struct store_seg_hdr {
	uint8_t align_log2, kind;
	uint64_t deployment;
	uint32_t segment;
	uint64_t created_ns;
};

uint32_t store_crc32c(uint32_t crc, const void *buf, size_t len);

/* Encode H (with LEN already the payload length) into OUT[72]; fills hcrc, and crc over PAYLOAD. */
void store_rec_hdr_encode(uint8_t *out, const struct store_rec_hdr *h, const uint8_t *payload);
/* Check and decode a header: 0, or -EBADMSG (magic, version, hcrc, length bound). */
int store_rec_hdr_decode(const uint8_t *in, struct store_rec_hdr *h /* OUT */);
/* Whether the crc over IN's header and its LEN payload bytes holds. */
bool store_rec_crc_ok(const uint8_t *rec, uint32_t len);

void store_seg_hdr_encode(uint8_t *out, const struct store_seg_hdr *h);
int store_seg_hdr_decode(const uint8_t *in, size_t len, struct store_seg_hdr *h /* OUT */);

static inline uint64_t store_align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

/* What the scanner found, per record. */
enum store_scan_status { STORE_SCAN_OK, STORE_SCAN_CORRUPT };
typedef void store_scan_fn(void *arg, enum store_scan_status st, uint64_t off, const struct store_rec_hdr *h,
			   const uint8_t *payload);

struct store_scan_result {
	uint64_t valid_end;      /* just past the last record with a sound header: the append point */
	uint32_t n_ok, n_corrupt; /* sound records; records with a sound header whose crc fails */
	uint64_t resynced_bytes; /* bytes skipped between a damaged header and the next sound one */
	uint64_t torn_bytes;     /* bytes after valid_end (a torn tail, or garbage) */
};

/*
 * Scan a whole segment image BUF[LEN] (header included). Calls FN for every record with a
 * sound header, in order. Never reads outside BUF. Returns 0, or -EBADMSG if the segment header
 * is damaged (nothing in it can be trusted).
 * Cost: one crc pass over the bytes, plus for each damaged header a forward search in ALIGN steps.
 */
int store_seg_scan(const uint8_t *buf, size_t len, store_scan_fn *fn, void *arg, struct store_seg_hdr *seg /* OUT */,
		   struct store_scan_result *res /* OUT */);

/* The plaintext of an evidence record: the alert, then the JPEG. */
#define STORE_ALERT_BYTES 296
struct store_alert;
void store_alert_encode(uint8_t *out, const struct store_alert *a);
void store_alert_decode(const uint8_t *in, struct store_alert *a /* OUT */);



/* Limits of the implementation, not of the format. */
#define STORE_MAX_DEPLOYMENTS 64 /* deployments open at once (an appliance runs one or two) */
#define STORE_KEY_BYTES 32
#define STORE_TAG_BYTES 16

/* ---- the running store ------------------------------------------------------------------------
 * One struct store per open store. Who touches what: st->mu guards the queue, the free slots,
 * the index and the deployments' liveness; st->meta_mu serialises meta journal appends; the
 * fields marked "store thread only" and the segments' append points belong to the store thread
 * (or to store_open() before it starts).
 */
VG_COUNTERS_DECLARE(store, STORE, STORE_COUNTERS)

/* Counter rows: the store thread writes row 0; every other thread writes row 1 holding st->mu. */
enum { ROW_THREAD, ROW_LOCKED };

struct store_dep {
	uint64_t id;
	bool live;
	crypto_aead_aes256gcm_state gcm; /* the key expanded, for AES-NI */
	uint8_t key[STORE_KEY_BYTES];
	uint32_t seg_align;  /* of the active segment: 8, or 4096 (O_DIRECT) */
	int seg_fd;          /* active segment, or -1 */
	int seg_file;        /* its index in the ring's registered files, or -1 */
	uint32_t seg_no;     /* active segment number */
	uint64_t seg_end;    /* durable append point */
	uint64_t seg_next;   /* append point after the group being built or in flight */
	int meta_fd;
	uint64_t meta_end;   /* under meta_mu */
	unsigned group_recs; /* records in the group being built */
	int group_rc;        /* first error of its chain in the group in flight */
};

struct store_ent {
	uint64_t seq, time_ns, offset;
	uint32_t len, segment;
	uint16_t dep;
	uint8_t outcome;
	uint8_t deleted : 1, corrupt : 1;
};

enum job_kind { JOB_PUT, JOB_DEP_OPEN, JOB_SHRED, JOB_SWEEP, JOB_STOP };

struct store_ctl {
	enum job_kind kind;
	uint64_t dep;
	int rc;
	bool done;
};

struct store_slot {
	struct store_alert alert;
	enum store_crop_format fmt;
	uint32_t width, height;
	size_t in_len;   /* RGB bytes in IN; 0 once scrubbed */
	size_t jpeg_len; /* a JPEG crop, already in REC at its payload offset */
	uint64_t time_ns; /* the store clock at prepare: retention counts from it */
	uint8_t *in;  /* the crop as handed in (RGB or JPEG), scrubbed when done */
	uint8_t *rec; /* the record as written: header, sealed payload, zero padding */
	uint32_t rec_len, rec_pad;
	int dep;
	store_ack_fn *ack;
	void *arg;
	struct store_handle h;
};

struct job {
	enum job_kind kind;
	uint32_t slot;
	struct store_ctl *ctl;
};

struct store {
	struct store_conf conf;
	char *dir;
	int lock_fd; /* flock(LOCK_EX) on <dir>/lock: one process owns a store at a time */
	uint8_t appliance_key[STORE_KEY_BYTES];
	enum store_cipher cipher;
	uint8_t nonce_prefix[16]; /* random per open; the record's seq makes the other 8 bytes */
	uint32_t align;           /* 8, or 4096 with O_DIRECT */
	bool o_direct;

	pthread_mutex_t mu; /* queue, free slots, index, deployments' liveness, counter row 1 */
	pthread_cond_t work_cv, done_cv;
	struct job *queue;
	uint32_t q_cap, q_head, q_len;
	uint32_t *free_slots, n_free;

	struct store_slot *slots;
	uint32_t n_slots;
	uint8_t *slab; /* slots' in and rec buffers: MADV_DONTDUMP, locked where allowed */
	size_t slab_len, in_cap, rec_cap;

	struct store_dep *deps; /* STORE_MAX_DEPLOYMENTS, in the slab's protection too (keys) */
	unsigned n_deps;

	struct store_ent *idx; /* sorted by seq */
	size_t n_idx, cap_idx;
	uint64_t next_seq;

	pthread_mutex_t meta_mu;

	struct io_uring ring;
	bool regbuf, regfile, no_uring;
	pthread_t thread;
	bool thread_started;

	/* Store thread only. */
	uint32_t *pending; /* slots prepared, not yet in a group */
	uint32_t n_pending;
	uint64_t oldest_pending_ns;
	uint32_t *group;
	uint32_t n_group;
	struct iovec *iov; /* one per group member: a deployment's writev */
	unsigned n_inflight; /* SQEs of the group in flight; 0 when none */
	uint64_t next_sweep_ns, sweep_every_ns; /* monotonic */
	tjhandle tj;

	struct vg_counter_block *counters;
	struct vg_counter_row *row[2];
};

/* What recovery gathers from the meta journals, applied once every segment is indexed. */
struct meta_op {
	uint64_t seq;
	uint8_t type, val;
};

struct recover_ctx {
	struct store *st;
	uint16_t dep;
	uint32_t segment;
	struct meta_op *ops;
	size_t n_ops, cap_ops;
	int rc;
};

static inline uint64_t store_now(const struct store *st)
{
	return st->conf.clock(st->conf.clock_arg);
}

static inline void count(struct store *st, int row, unsigned idx, uint64_t v)
{
	vg_counter_add(st->row[row], idx, v);
}

/* store_files.c: paths, synced writes, segment files. Any thread; no state of their own. */
void store_dep_path(const struct store *st, uint64_t dep, const char *leaf, char *out, size_t n);
void store_seg_path(const struct store *st, uint64_t dep, uint32_t seg, char *out, size_t n);
int store_fsync_dir(const char *path);
int store_write_sync_pad(int fd, const void *data, size_t data_len, size_t n, uint64_t off);
int store_write_sync(int fd, const void *data, size_t n, uint64_t off);
int store_seg_open_fd(struct store *st, const char *path, int flags);
int store_seg_create(struct store *st, struct store_dep *d, uint32_t seg, bool meta, int *fd_out, uint64_t *end);
void store_dep_close_files(struct store *st, unsigned di);

/* store_keys.c: data keys under the appliance key, records' seal, crypto-shredding. */
int store_dep_key_load(struct store *st, struct store_dep *d, bool create);
int store_appliance_key_load(struct store *st, char *err, size_t errlen);
void store_rec_seal(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *m, size_t mlen);
int store_rec_open(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *c, size_t clen);
void store_rm_tree_files(const char *dir);
int store_dep_shred(struct store *st, uint64_t id);

/* store_recover.c: the index, the meta journal, and recovery of deployments from disk. */
int store_idx_push(struct store *st, const struct store_ent *e);
struct store_ent *store_idx_find(struct store *st, uint64_t seq);
int store_dep_find(struct store *st, uint64_t id);
void store_ent_handle(const struct store *st, const struct store_ent *e, struct store_handle *h);
int store_meta_append(struct store *st, struct store_dep *d, enum store_rec_type type, uint64_t seq, uint8_t val);
int store_seg_list(const char *dir, uint32_t **out, size_t *n);
int store_dep_load(struct store *st, uint64_t id, bool create, struct recover_ctx *c);
int store_recover_all(struct store *st, char *err, size_t errlen);

/* store_ring.c: the store thread, its io_uring, and control jobs posted to it. */
void store_ring_init(struct store *st, size_t slots_len);
int store_ring_file_set(struct store *st, unsigned di, int fd);
void *store_thread(void *arg);
int store_ctl_run(struct store *st, enum job_kind kind, uint64_t dep);

/* store_retention.c: deletion past retention (store thread) and the punch it shares with recovery. */
int store_punch(struct store *st, const struct store_ent *e);
int store_sweep_run(struct store *st);
#endif /* STORE_INT_H */
