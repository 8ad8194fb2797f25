/*
 * The evidence store (store.h): one store thread owns an io_uring and the active segment of
 * every deployment; callers queue records into fixed slots and are acknowledged once an
 * fdatasync covering their write has completed.
 *
 * Layout under conf->dir:   dep-<id hex>/key       the deployment's data key, sealed
 *                           dep-<id hex>/meta      journal of outcomes and tombstones
 *                           dep-<id hex>/seg-<n>   evidence segments, append-only
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <liburing.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_counter.h"
#include "vg_keyfile.h"
#include "vg_log.h"
#include "vg_pool.h"

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

static uint64_t clock_default(void *arg)
{
	(void)arg;
	return vg_clock_realtime_ns();
}

static uint64_t store_now(const struct store *st)
{
	return st->conf.clock(st->conf.clock_arg);
}

static void count(struct store *st, int row, unsigned idx, uint64_t v)
{
	vg_counter_add(st->row[row], idx, v);
}

/* ---- paths and files ------------------------------------------------------------------------- */
static void dep_path(const struct store *st, uint64_t dep, const char *leaf, char *out, size_t n)
{
	snprintf(out, n, "%s/dep-%016" PRIx64 "%s%s", st->dir, dep, leaf ? "/" : "", leaf ? leaf : "");
}

static void seg_path(const struct store *st, uint64_t dep, uint32_t seg, char *out, size_t n)
{
	char leaf[32];

	snprintf(leaf, sizeof(leaf), "seg-%08" PRIu32, seg);
	dep_path(st, dep, leaf, out, n);
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	int rc = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
	struct stat sb;
	uint8_t *buf;
	size_t got = 0;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		close(fd);
		return -errno;
	}
	buf = malloc(sb.st_size > 0 ? (size_t)sb.st_size : 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size) {
		ssize_t r = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

/* Write N bytes at OFF (DATA_LEN of DATA, then zeros) through an aligned bounce buffer (O_DIRECT needs one), then fdatasync. */
static int write_sync_pad(int fd, const void *data, size_t data_len, size_t n, uint64_t off)
{
	void *b;
	ssize_t w;
	int rc = 0;

	if (posix_memalign(&b, 4096, store_align_up(n, 4096)))
		return -ENOMEM;
	memset(b, 0, store_align_up(n, 4096));
	memcpy(b, data, n < data_len ? n : data_len);
	w = pwrite(fd, b, n, (off_t)off);
	if (w < 0)
		rc = -errno;
	else if ((size_t)w != n)
		rc = -ENOSPC;
	else if (fdatasync(fd) < 0)
		rc = -errno;
	free(b);
	return rc;
}

static int write_sync(int fd, const void *data, size_t n, uint64_t off)
{
	return write_sync_pad(fd, data, n, n, off);
}

static int open_seg_fd(struct store *st, const char *path, int flags)
{
	int fd;

	if (st->o_direct) {
		fd = open(path, flags | O_DIRECT | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EINVAL)
			return fd < 0 ? -errno : fd;
		/* This file system refuses O_DIRECT (tmpfs): buffered from now on, counted. */
		st->o_direct = false;
		count(st, ROW_THREAD, STORE_fallback_odirect, 1);
	}
	fd = open(path, flags | O_CLOEXEC, 0600);
	return fd < 0 ? -errno : fd;
}

/* Make segment SEG of D (or its meta journal) with its header, durable with its directory entry. */
static int seg_create(struct store *st, struct store_dep *d, uint32_t seg, bool meta, int *fd_out, uint64_t *end)
{
	char path[4096], dir[4096];
	uint8_t hdr[STORE_SEG_HDR];
	struct store_seg_hdr sh = { .kind = meta ? STORE_SEG_META : STORE_SEG_EVIDENCE, .deployment = d->id,
				    .segment = seg, .created_ns = store_now(st) };
	uint32_t align = meta ? 8 : st->align;
	int fd, rc;

	if (meta)
		dep_path(st, d->id, "meta", path, sizeof(path));
	else
		seg_path(st, d->id, seg, path, sizeof(path));
	dep_path(st, d->id, NULL, dir, sizeof(dir));
	fd = meta ? open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600)
		  : open_seg_fd(st, path, O_RDWR | O_CREAT | O_EXCL);
	if (fd < 0)
		return meta ? -errno : fd;
	if (!meta && !st->o_direct)
		align = 8;
	sh.align_log2 = align == 4096 ? 12 : 3;
	store_seg_hdr_encode(hdr, &sh);
	/* one write of the header padded to the alignment, so O_DIRECT writes start aligned */
	rc = write_sync_pad(fd, hdr, sizeof(hdr), align > sizeof(hdr) ? align : sizeof(hdr), 0);
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc < 0) {
		close(fd);
		unlink(path);
		return rc;
	}
	*fd_out = fd;
	*end = store_align_up(STORE_SEG_HDR, align);
	return 0;
}

/* ---- keys ------------------------------------------------------------------------------------ */
static const char dk_ad_prefix[] = "vigil deployment key v1";

static void dk_ad(uint8_t ad[sizeof(dk_ad_prefix) + 8], uint64_t dep)
{
	memcpy(ad, dk_ad_prefix, sizeof(dk_ad_prefix));
	for (int i = 0; i < 8; i++)
		ad[sizeof(dk_ad_prefix) + i] = (uint8_t)(dep >> (8 * i));
}

/* Load D's data key from its sealed file, or make and seal one if CREATE and there is none. */
static int dep_key_load(struct store *st, struct store_dep *d, bool create)
{
	uint8_t sealed[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + STORE_KEY_BYTES +
		       crypto_aead_xchacha20poly1305_ietf_ABYTES];
	uint8_t ad[sizeof(dk_ad_prefix) + 8];
	char path[4096], dir[4096];
	unsigned long long n;
	uint8_t *npub = sealed;
	int fd, rc;

	dk_ad(ad, d->id);
	dep_path(st, d->id, "key", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t r = read(fd, sealed, sizeof(sealed));
		close(fd);
		if (r != (ssize_t)sizeof(sealed))
			return -EBADMSG;
		if (crypto_aead_xchacha20poly1305_ietf_decrypt(d->key, &n, NULL, npub + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
							       STORE_KEY_BYTES + crypto_aead_xchacha20poly1305_ietf_ABYTES,
							       ad, sizeof(ad), npub, st->appliance_key) < 0)
			return -EKEYREJECTED;
		return 0;
	}
	if (errno != ENOENT || !create)
		return -errno;
	randombytes_buf(d->key, sizeof(d->key));
	randombytes_buf(npub, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(npub + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &n, d->key,
						   STORE_KEY_BYTES, ad, sizeof(ad), NULL, npub, st->appliance_key);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	if (fd < 0)
		return -errno;
	rc = write_sync(fd, sealed, sizeof(sealed), 0);
	close(fd);
	dep_path(st, d->id, NULL, dir, sizeof(dir));
	if (rc == 0)
		rc = fsync_dir(dir);
	if (rc < 0)
		unlink(path);
	return rc;
}

static int appliance_key_load(struct store *st, char *err, size_t errlen)
{
	const char *path = st->conf.appliance_key_path;
	int rc;

	if (!path)
		return vg_errf(err, errlen, -EINVAL, "store: no appliance key file configured");
	rc = vg_key_file_read(path, st->appliance_key, sizeof(st->appliance_key), st->conf.create_appliance_key);
	if (rc == -EPERM)
		return vg_errf(err, errlen, rc, "store: appliance key %s must be a regular file of uid %u, mode 0400 or 0600",
			       path, (unsigned)geteuid());
	if (rc == -EINVAL)
		return vg_errf(err, errlen, rc, "store: appliance key %s must hold %d bytes", path, STORE_KEY_BYTES);
	if (rc == -EIO)
		return vg_errf(err, errlen, rc, "store: cannot write appliance key %s", path);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "store: cannot open appliance key %s: %s", path, vg_strerror(rc));
	return 0;
}

/* ---- records' seal ---------------------------------------------------------------------------- */
static void rec_ad(uint8_t ad[32], const struct store_rec_hdr *h)
{
	uint64_t v[4] = { h->seq, h->deployment, h->time_ns,
			  (uint64_t)h->version | (uint64_t)h->type << 16 | (uint64_t)h->cipher << 24 };

	for (int i = 0; i < 4; i++)
		for (int b = 0; b < 8; b++)
			ad[8 * i + b] = (uint8_t)(v[i] >> (8 * b));
}

/* Seal M[MLEN] in place (room for the tag after it). */
static void rec_seal(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *m, size_t mlen)
{
	uint8_t ad[32];
	unsigned long long clen;

	rec_ad(ad, h);
	if (h->cipher == STORE_CIPHER_AES256GCM)
		crypto_aead_aes256gcm_encrypt_afternm(m, &clen, m, mlen, ad, sizeof(ad), NULL, h->nonce, &d->gcm);
	else
		crypto_aead_xchacha20poly1305_ietf_encrypt(m, &clen, m, mlen, ad, sizeof(ad), NULL, h->nonce, d->key);
}

static int rec_open(const struct store_dep *d, const struct store_rec_hdr *h, uint8_t *c, size_t clen)
{
	uint8_t ad[32];
	unsigned long long mlen;
	int rc;

	rec_ad(ad, h);
	if (h->cipher == STORE_CIPHER_AES256GCM) {
		if (!crypto_aead_aes256gcm_is_available())
			return -ENOTSUP;
		rc = crypto_aead_aes256gcm_decrypt_afternm(c, &mlen, NULL, c, clen, ad, sizeof(ad), h->nonce, &d->gcm);
	} else if (h->cipher == STORE_CIPHER_XCHACHA20POLY1305) {
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt(c, &mlen, NULL, c, clen, ad, sizeof(ad), h->nonce, d->key);
	} else {
		return -EBADMSG;
	}
	return rc < 0 ? -EBADMSG : 0;
}

/* ---- the index -------------------------------------------------------------------------------- */
static int idx_push(struct store *st, const struct store_ent *e)
{
	if (st->n_idx == st->cap_idx) {
		/* Grows by doubling on the store thread, never on a caller's path: ~2,000 alerts a
		 * year means this runs a handful of times in an appliance's life. */
		size_t cap = st->cap_idx ? st->cap_idx * 2 : 1024;
		struct store_ent *n = realloc(st->idx, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		st->idx = n;
		st->cap_idx = cap;
	}
	st->idx[st->n_idx++] = *e;
	return 0;
}

static struct store_ent *idx_find(struct store *st, uint64_t seq)
{
	size_t lo = 0, hi = st->n_idx;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (st->idx[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->n_idx && st->idx[lo].seq == seq ? &st->idx[lo] : NULL;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct store_ent *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int dep_find(struct store *st, uint64_t id)
{
	for (unsigned i = 0; i < st->n_deps; i++)
		if (st->deps[i].id == id && st->deps[i].live)
			return (int)i;
	return -1;
}

static void ent_handle(const struct store *st, const struct store_ent *e, struct store_handle *h)
{
	*h = (struct store_handle){ .deployment = st->deps[e->dep].id, .seq = e->seq, .segment = e->segment,
				    .len = e->len, .offset = e->offset, .saved = true };
}

/* ---- the meta journal ------------------------------------------------------------------------- */
#define META_PAYLOAD 16

static int meta_append(struct store *st, struct store_dep *d, enum store_rec_type type, uint64_t seq, uint8_t val)
{
	uint8_t rec[STORE_REC_HDR + META_PAYLOAD] = { 0 };
	struct store_rec_hdr h = { .version = STORE_VERSION, .type = (uint8_t)type, .cipher = STORE_CIPHER_NONE,
				   .len = META_PAYLOAD, .seq = seq, .deployment = d->id, .time_ns = store_now(st) };
	int rc;

	for (int i = 0; i < 8; i++)
		rec[STORE_REC_HDR + i] = (uint8_t)(seq >> (8 * i));
	rec[STORE_REC_HDR + 8] = val;
	store_rec_hdr_encode(rec, &h, rec + STORE_REC_HDR);
	rc = write_sync(d->meta_fd, rec, sizeof(rec), d->meta_end);
	if (rc < 0) {
		/* cut back whatever part landed, so the journal stays a clean sequence */
		if (ftruncate(d->meta_fd, (off_t)d->meta_end) == 0)
			fdatasync(d->meta_fd);
		return rc;
	}
	d->meta_end += store_align_up(sizeof(rec), 8);
	return 0;
}

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

static void recover_meta_rec(void *arg, enum store_scan_status status, uint64_t off, const struct store_rec_hdr *h,
			     const uint8_t *payload)
{
	struct recover_ctx *c = arg;

	(void)off;
	if (status != STORE_SCAN_OK || h->len != META_PAYLOAD || h->type == STORE_REC_EVIDENCE)
		return;
	if (c->n_ops == c->cap_ops) {
		size_t cap = c->cap_ops ? c->cap_ops * 2 : 64;
		struct meta_op *n = realloc(c->ops, cap * sizeof(*n));
		if (!n) {
			c->rc = -ENOMEM;
			return;
		}
		c->ops = n;
		c->cap_ops = cap;
	}
	c->ops[c->n_ops++] = (struct meta_op){ .seq = h->seq, .type = h->type, .val = payload[8] };
}

static void recover_seg_rec(void *arg, enum store_scan_status status, uint64_t off, const struct store_rec_hdr *h,
			    const uint8_t *payload)
{
	struct recover_ctx *c = arg;
	struct store *st = c->st;
	struct store_ent e = { .seq = h->seq, .time_ns = h->time_ns, .offset = off, .len = STORE_REC_HDR + h->len,
			       .segment = c->segment, .dep = c->dep, .outcome = STORE_OUTCOME_UNREVIEWED,
			       .corrupt = status != STORE_SCAN_OK };

	(void)payload;
	if (h->type != STORE_REC_EVIDENCE || h->deployment != st->deps[c->dep].id)
		e.corrupt = 1;
	if (h->seq >= st->next_seq)
		st->next_seq = h->seq + 1;
	if (c->rc == 0)
		c->rc = idx_push(st, &e);
}

static int seg_list(const char *dir, uint32_t **out, size_t *n)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	uint32_t *v = NULL;
	size_t cnt = 0, cap = 0;

	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		unsigned long long no;
		char *end;

		if (strncmp(de->d_name, "seg-", 4))
			continue;
		no = strtoull(de->d_name + 4, &end, 10);
		if (*end || no > UINT32_MAX)
			continue;
		if (cnt == cap) {
			uint32_t *nv = realloc(v, (cap = cap ? cap * 2 : 16) * sizeof(*v));
			if (!nv) {
				free(v);
				closedir(dp);
				return -ENOMEM;
			}
			v = nv;
		}
		v[cnt++] = (uint32_t)no;
	}
	closedir(dp);
	for (size_t i = 1; i < cnt; i++) /* insertion sort: a deployment has tens of segments */
		for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
			uint32_t t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	*out = v;
	*n = cnt;
	return 0;
}

/* Scan a deployment's meta journal and segments into the index; open its active segment. */
static int dep_recover(struct store *st, unsigned di, struct recover_ctx *c)
{
	struct store_dep *d = &st->deps[di];
	char dir[4096], path[4096];
	uint32_t *segs = NULL;
	size_t n_segs = 0;
	uint8_t *buf;
	size_t len;
	int rc;

	c->st = st;
	c->dep = (uint16_t)di;
	dep_path(st, d->id, NULL, dir, sizeof(dir));

	dep_path(st, d->id, "meta", path, sizeof(path));
	rc = read_all(path, &buf, &len);
	if (rc == -ENOENT) {
		rc = seg_create(st, d, 0, true, &d->meta_fd, &d->meta_end);
		if (rc < 0)
			return rc;
	} else if (rc < 0) {
		return rc;
	} else {
		struct store_seg_hdr sh;
		struct store_scan_result res;

		rc = store_seg_scan(buf, len, recover_meta_rec, c, &sh, &res);
		free(buf);
		if (rc < 0 || sh.kind != STORE_SEG_META)
			return -EBADMSG; /* a damaged journal header: refuse rather than forget outcomes */
		if (res.torn_bytes) {
			count(st, ROW_THREAD, STORE_torn_dropped, 1);
			if (truncate(path, (off_t)res.valid_end) < 0)
				return -errno;
		}
		d->meta_fd = open(path, O_RDWR | O_CLOEXEC);
		if (d->meta_fd < 0)
			return -errno;
		d->meta_end = res.valid_end;
	}
	if (c->rc < 0)
		return c->rc;

	rc = seg_list(dir, &segs, &n_segs);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n_segs; i++) {
		struct store_seg_hdr sh;
		struct store_scan_result res;
		bool last = i + 1 == n_segs;

		seg_path(st, d->id, segs[i], path, sizeof(path));
		rc = read_all(path, &buf, &len);
		if (rc < 0)
			goto out_free_segs;
		c->segment = segs[i];
		rc = store_seg_scan(buf, len, recover_seg_rec, c, &sh, &res);
		free(buf);
		if (c->rc < 0) {
			rc = c->rc;
			goto out_free_segs;
		}
		if (rc < 0) {
			/* A segment whose header never became durable held no acknowledged record
			 * (its creation is synced before any record goes in): remove it. */
			if (len < 4096) {
				unlink(path);
				count(st, ROW_THREAD, STORE_torn_dropped, 1);
				if (last)
					n_segs--;
			} else {
				count(st, ROW_THREAD, STORE_corrupt_dropped, 1);
			}
			rc = 0;
			continue;
		}
		count(st, ROW_THREAD, STORE_resynced_bytes, res.resynced_bytes);
		if (res.torn_bytes) {
			count(st, ROW_THREAD, STORE_torn_dropped, 1);
			if (last && truncate(path, (off_t)res.valid_end) < 0) {
				rc = -errno;
				goto out_free_segs;
			}
		}
		if (last) {
			/* A segment keeps the alignment it was made with: a buffered one stays
			 * buffered (O_DIRECT would refuse its 8-byte records); an O_DIRECT one
			 * written buffered just keeps padding to 4 KiB. */
			if (sh.align_log2 == 12)
				rc = open_seg_fd(st, path, O_RDWR);
			else if ((rc = open(path, O_RDWR | O_CLOEXEC)) < 0)
				rc = -errno;
			if (rc < 0)
				goto out_free_segs;
			d->seg_fd = rc;
			d->seg_no = segs[i];
			d->seg_align = 1u << sh.align_log2;
			d->seg_end = d->seg_next = res.valid_end;
			rc = 0;
		}
	}
	if (d->seg_fd < 0) {
		uint32_t no = n_segs ? segs[n_segs - 1] + 1 : 0;

		rc = seg_create(st, d, no, false, &d->seg_fd, &d->seg_end);
		if (rc < 0)
			goto out_free_segs;
		d->seg_no = no;
		d->seg_next = d->seg_end;
		d->seg_align = st->o_direct ? 4096 : 8;
	}
out_free_segs:
	free(segs);
	return rc;
}

static void apply_meta(struct store *st, struct meta_op *ops, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct store_ent *e = idx_find(st, ops[i].seq);

		if (ops[i].seq >= st->next_seq)
			st->next_seq = ops[i].seq + 1;
		if (!e)
			continue;
		if (ops[i].type == STORE_REC_OUTCOME && ops[i].val <= STORE_OUTCOME_REJECTED)
			e->outcome = ops[i].val;
		else if (ops[i].type == STORE_REC_DELETE)
			e->deleted = 1;
	}
}

/* Punch out a deleted record's payload (its header stays, so the scan still steps over it). */
static int punch(struct store *st, const struct store_ent *e)
{
	char path[4096];
	int fd, rc = 0;

	seg_path(st, st->deps[e->dep].id, e->segment, path, sizeof(path));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)(e->offset + STORE_REC_HDR),
		      (off_t)(e->len - STORE_REC_HDR)) < 0) {
		/* no hole punching here: overwrite with zeros instead */
		size_t n = e->len - STORE_REC_HDR;
		uint8_t *z = calloc(1, n);

		rc = -ENOMEM;
		if (z) {
			rc = pwrite(fd, z, n, (off_t)(e->offset + STORE_REC_HDR)) == (ssize_t)n ? 0 : -EIO;
			free(z);
		}
	}
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* ---- deployments ------------------------------------------------------------------------------ */
static int ring_file_set(struct store *st, unsigned di, int fd)
{
	if (!st->regfile)
		return 0;
	return io_uring_register_files_update(&st->ring, di, &fd, 1) == 1 ? 0 : -EIO;
}

static void dep_close_files(struct store *st, unsigned di)
{
	struct store_dep *d = &st->deps[di];

	if (d->seg_fd >= 0) {
		ring_file_set(st, di, -1);
		close(d->seg_fd);
	}
	if (d->meta_fd >= 0)
		close(d->meta_fd);
	d->seg_fd = d->meta_fd = -1;
}

/* Load deployment ID from disk or make it (CREATE). Store thread, or store_open before it starts. */
static int dep_load(struct store *st, uint64_t id, bool create, struct recover_ctx *c)
{
	struct store_dep *d;
	char dir[4096];
	unsigned di;
	int rc;

	if (dep_find(st, id) >= 0)
		return 0; /* open already */
	for (di = 0; di < st->n_deps; di++)
		if (!st->deps[di].live)
			break; /* a shredded slot is reused */
	if (di == STORE_MAX_DEPLOYMENTS)
		return -ENOSPC;
	d = &st->deps[di];
	*d = (struct store_dep){ .id = id, .seg_fd = -1, .meta_fd = -1 };
	dep_path(st, id, NULL, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	rc = fsync_dir(st->dir);
	if (rc == 0)
		rc = dep_key_load(st, d, create);
	if (rc == 0 && st->cipher == STORE_CIPHER_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&d->gcm, d->key);
	if (rc == 0)
		rc = dep_recover(st, di, c);
	if (rc == 0)
		rc = ring_file_set(st, di, d->seg_fd);
	if (rc < 0) {
		dep_close_files(st, di);
		sodium_memzero(d, sizeof(*d));
		d->seg_fd = d->meta_fd = -1;
		return rc;
	}
	pthread_mutex_lock(&st->mu);
	d->live = true;
	if (di == st->n_deps)
		st->n_deps++;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

static void rm_tree_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	char path[4096];

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(dp);
	rmdir(dir);
}

/* Store thread: destroy the key first (after that nothing of it is readable), then the files. */
static int dep_shred(struct store *st, uint64_t id)
{
	struct store_handle *gone = NULL;
	enum store_outcome *outc = NULL;
	size_t n_gone = 0;
	char path[4096], dir[4096];
	unsigned di;
	int rc;

	for (di = 0; di < st->n_deps; di++)
		if (st->deps[di].id == id)
			break;
	if (di == st->n_deps)
		return -ENOENT;
	dep_path(st, id, "key", path, sizeof(path));
	dep_path(st, id, NULL, dir, sizeof(dir));
	if (unlink(path) < 0 && errno != ENOENT)
		return -errno;
	rc = fsync_dir(dir);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&st->mu);
	st->deps[di].live = false;
	sodium_memzero(st->deps[di].key, sizeof(st->deps[di].key));
	sodium_memzero(&st->deps[di].gcm, sizeof(st->deps[di].gcm));
	gone = malloc((st->n_idx + 1) * sizeof(*gone));
	outc = malloc((st->n_idx + 1) * sizeof(*outc));
	for (size_t i = 0; gone && outc && i < st->n_idx; i++) {
		struct store_ent *e = &st->idx[i];
		if (e->dep != di || e->deleted)
			continue;
		e->deleted = 1;
		if (e->corrupt)
			continue;
		ent_handle(st, e, &gone[n_gone]);
		gone[n_gone].deployment = id;
		outc[n_gone++] = e->outcome;
	}
	count(st, ROW_LOCKED, STORE_deleted, n_gone);
	pthread_mutex_unlock(&st->mu);
	pthread_mutex_lock(&st->meta_mu);
	dep_close_files(st, di);
	pthread_mutex_unlock(&st->meta_mu);
	rm_tree_files(dir);
	fsync_dir(st->dir);
	for (size_t i = 0; i < n_gone; i++)
		if (st->conf.on_delete)
			st->conf.on_delete(st->conf.on_delete_arg, &gone[i], outc[i], STORE_DELETE_SHRED);
	free(gone);
	free(outc);
	return gone || !n_gone ? 0 : -ENOMEM;
}

/* ---- the store thread ------------------------------------------------------------------------- */
static void slot_release(struct store *st, uint32_t si)
{
	/* caller holds st->mu */
	st->free_slots[st->n_free++] = si;
}

/* Encode and seal slot SI's record (store thread, off every caller's path). */
static int slot_prepare(struct store *st, uint32_t si)
{
	struct store_slot *s = &st->slots[si];
	struct store_dep *d = &st->deps[s->dep];
	struct store_rec_hdr h = { .version = STORE_VERSION, .type = STORE_REC_EVIDENCE, .cipher = (uint8_t)st->cipher,
				   .deployment = d->id, .time_ns = store_now(st) };
	uint8_t *pt = s->rec + STORE_REC_HDR;
	size_t jlen;

	h.seq = st->next_seq++;
	/* nonce = the random base of this open XOR the seq: unique per record and per open,
	 * without a getrandom() call per record */
	memcpy(h.nonce, st->nonce_prefix, 16);
	memset(h.nonce + 16, 0, 8);
	for (int i = 0; i < 8; i++) {
		h.nonce[16 + i] = (uint8_t)(h.seq >> (8 * i));
		h.nonce[i] ^= (uint8_t)(h.seq >> (8 * i)); /* the 12 bytes AES-GCM uses vary too */
	}
	store_alert_encode(pt, &s->alert);
	if (s->fmt == STORE_CROP_RGB) {
		unsigned char *jb = pt + STORE_ALERT_BYTES;
		unsigned long jsz = (unsigned long)(st->rec_cap - STORE_REC_HDR - STORE_ALERT_BYTES - STORE_TAG_BYTES - 4096);

		if (tjCompress2(st->tj, s->in, (int)s->width, 0, (int)s->height, TJPF_RGB, &jb, &jsz, TJSAMP_420,
				(int)st->conf.jpeg_quality, TJFLAG_NOREALLOC) < 0) {
			count(st, ROW_THREAD, STORE_jpeg_fail, 1);
			return -EINVAL;
		}
		jlen = jsz;
	} else {
		jlen = s->jpeg_len; /* store_put_async() copied it into place */
	}
	vg_scrub(s->in, s->in_len); /* the crop in the clear is needed no longer */
	s->in_len = 0;
	h.len = (uint32_t)(STORE_ALERT_BYTES + jlen + STORE_TAG_BYTES);
	rec_seal(d, &h, pt, STORE_ALERT_BYTES + jlen);
	store_rec_hdr_encode(s->rec, &h, pt);
	s->rec_len = STORE_REC_HDR + h.len;
	s->h = (struct store_handle){ .deployment = d->id, .seq = h.seq, .len = s->rec_len };
	s->time_ns = h.time_ns;
	return 0;
}

static void slot_finish(struct store *st, uint32_t si, int rc)
{
	struct store_slot *s = &st->slots[si];
	struct store_handle h = s->h;
	store_ack_fn *ack = s->ack;
	void *arg = s->arg;

	if (rc < 0) {
		store_handle_unsaved(&h, &s->alert);
		if (rc == -ENOSPC)
			count(st, ROW_THREAD, STORE_enospc, 1);
		else if (rc == -EIO)
			count(st, ROW_THREAD, STORE_eio, 1);
		count(st, ROW_THREAD, STORE_unsaved, 1);
	}
	vg_scrub(s->in, s->in_len);
	pthread_mutex_lock(&st->mu);
	slot_release(st, si);
	pthread_mutex_unlock(&st->mu);
	if (ack)
		ack(arg, rc, &h);
}

static void group_reap(struct store *st);

/* Without io_uring (refused here): the same group as one pwritev and one fdatasync. */
static int write_group_sync(int fd, struct iovec *iov, unsigned niov, uint64_t off, uint64_t total)
{
	uint64_t done = 0;

	while (done < total) {
		ssize_t w = pwritev(fd, iov, (int)niov, (off_t)(off + done));
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		if (w == 0)
			return -ENOSPC;
		done += (uint64_t)w;
		/* step over what was written, a short write being the disk filling up */
		while (niov && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			niov--;
		}
		if (niov && w) {
			iov->iov_base = (uint8_t *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return fdatasync(fd) < 0 ? -errno : 0;
}

/* Cut the pending list into one group and submit it: per deployment its writes, linked, then
 * one fdatasync. Only with no group in flight (st->n_inflight == 0). */
static void group_submit(struct store *st)
{
	unsigned n_sqe = 0, n_keep = 0;
	uint32_t n = 0;

	for (unsigned i = 0; i < st->n_deps; i++) {
		st->deps[i].group_recs = 0;
		st->deps[i].group_rc = 0;
	}
	for (uint32_t i = 0; i < st->n_pending; i++) {
		uint32_t si = st->pending[i];
		struct store_slot *s = &st->slots[si];
		struct store_dep *d = &st->deps[s->dep];
		uint64_t hdr_end = store_align_up(STORE_SEG_HDR, d->seg_align);
		uint32_t pad;

		if (n == st->conf.group_max) {
			st->pending[n_keep++] = si;
			continue;
		}
		if (!d->live || d->seg_fd < 0) {
			slot_finish(st, si, -ENOENT); /* shredded while queued */
			continue;
		}
		pad = (uint32_t)store_align_up(s->rec_len, d->seg_align);
		if (d->seg_next + pad > st->conf.segment_bytes && d->seg_next > hdr_end) {
			int fd, rc;
			uint64_t end;

			if (d->group_recs) {
				st->pending[n_keep++] = si; /* roll after this group */
				continue;
			}
			rc = seg_create(st, d, d->seg_no + 1, false, &fd, &end);
			if (rc < 0) {
				slot_finish(st, si, rc);
				continue;
			}
			ring_file_set(st, (unsigned)s->dep, fd);
			close(d->seg_fd);
			d->seg_fd = fd;
			d->seg_no++;
			d->seg_end = d->seg_next = end;
			d->seg_align = st->o_direct ? 4096 : 8;
			pad = (uint32_t)store_align_up(s->rec_len, d->seg_align);
		}
		memset(s->rec + s->rec_len, 0, pad - s->rec_len);
		s->rec_pad = pad;
		s->h.offset = d->seg_next;
		s->h.segment = d->seg_no;
		d->seg_next += pad;
		d->group_recs++;
		st->group[n++] = si;
	}
	st->n_pending = n_keep;
	if (!n)
		return;

	/* One chain per deployment: its writes in order, linked, then its fdatasync. A failed
	 * write cancels the rest of its chain, so the fdatasync never reports a group that did
	 * not all land. */
	for (unsigned di = 0; di < st->n_deps; di++) {
		struct store_dep *d = &st->deps[di];
		struct io_uring_sqe *sqe;
		int fd = st->regfile ? (int)di : d->seg_fd;

		if (!d->group_recs)
			continue;
		/* A deployment's records of one group are contiguous in its segment: one writev
		 * when there are several (one io-wq punt instead of one per record), a write from
		 * the registered buffer when there is one. */
		unsigned niov = 0;
		uint64_t first_off = 0, total = 0;
		for (uint32_t g = 0; g < n; g++) {
			struct store_slot *s = &st->slots[st->group[g]];

			if (s->dep != (int)di)
				continue;
			if (!niov)
				first_off = s->h.offset;
			st->iov[niov++] = (struct iovec){ .iov_base = s->rec, .iov_len = s->rec_pad };
			total += s->rec_pad;
		}
		if (st->no_uring) {
			d->group_rc = write_group_sync(d->seg_fd, st->iov, niov, first_off, total);
			continue;
		}
		sqe = io_uring_get_sqe(&st->ring);
		if (niov > 1)
			io_uring_prep_writev(sqe, fd, st->iov, niov, first_off);
		else if (st->regbuf)
			io_uring_prep_write_fixed(sqe, fd, st->iov[0].iov_base, (unsigned)total, first_off, 0);
		else
			io_uring_prep_write(sqe, fd, st->iov[0].iov_base, (unsigned)total, first_off);
		sqe->flags |= IOSQE_IO_LINK | (st->regfile ? IOSQE_FIXED_FILE : 0);
		io_uring_sqe_set_data64(sqe, (uint64_t)di << 32 | (uint32_t)total);
		n_sqe++;
		sqe = io_uring_get_sqe(&st->ring);
		io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
		sqe->flags |= st->regfile ? IOSQE_FIXED_FILE : 0;
		io_uring_sqe_set_data64(sqe, (uint64_t)di << 32 | 0xffffffffu);
		n_sqe++;
	}
	/* The SQ ring holds a whole group (sized at open), so one submit takes it all unless a
	 * signal interrupts it; the CQ ring is twice as large, so -EBUSY cannot happen. */
	for (int tries = 0; !st->no_uring && io_uring_sq_ready(&st->ring) && tries < 1000; tries++) {
		int r = io_uring_submit(&st->ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN) {
			VG_LOG(STORE, ERR, "io_uring_submit: %s", vg_strerror(r));
			break;
		}
	}
	st->n_group = n;
	st->n_inflight = n_sqe;
	if (st->no_uring)
		group_reap(st); /* written and synced already: acknowledge now */
}

/* Wait for the group in flight, then acknowledge each of its records (or fail them). */
static void group_reap(struct store *st)
{
	struct io_uring_cqe *cqe;
	unsigned n_sqe = st->n_inflight;
	uint32_t n = st->n_group;

	for (unsigned i = 0; i < n_sqe; i++) {
		uint64_t ud;
		struct store_dep *d;
		int rc;

		while ((rc = io_uring_wait_cqe(&st->ring, &cqe)) == -EINTR)
			;
		if (rc < 0)
			break;
		ud = io_uring_cqe_get_data64(cqe);
		d = &st->deps[ud >> 32];
		/* The cause wins over the -ECANCELED of the links after it, whatever order the
		 * completions come in. */
		if ((uint32_t)ud == 0xffffffffu) {
			if (cqe->res < 0 && (!d->group_rc || d->group_rc == -ECANCELED))
				d->group_rc = cqe->res;
		} else if (cqe->res != (int)(uint32_t)ud && (!d->group_rc || d->group_rc == -ECANCELED)) {
			/* a short write is the file system running out of room (or RLIMIT_FSIZE) */
			d->group_rc = cqe->res < 0 ? cqe->res : -ENOSPC;
		}
		io_uring_cqe_seen(&st->ring, cqe);
	}
	for (unsigned di = 0; di < st->n_deps; di++) {
		struct store_dep *d = &st->deps[di];

		if (!d->group_recs)
			continue;
		if (d->group_rc == 0) {
			d->seg_end = d->seg_next;
			continue;
		}
		if (d->group_rc == -EFBIG)
			d->group_rc = -ENOSPC;
		else if (d->group_rc != -ENOSPC && d->group_rc != -EDQUOT)
			d->group_rc = -EIO;
		else
			d->group_rc = -ENOSPC;
		/* Cut the failed group back off: what was acknowledged before stays, and the next
		 * group starts where the last durable record ends. */
		if (ftruncate(d->seg_fd, (off_t)d->seg_end) == 0)
			fdatasync(d->seg_fd);
		d->seg_next = d->seg_end;
	}
	count(st, ROW_THREAD, STORE_groups, 1);
	st->n_inflight = 0;
	st->n_group = 0;
	for (uint32_t g = 0; g < n; g++) {
		uint32_t si = st->group[g];
		struct store_slot *s = &st->slots[si];
		int rc = st->deps[s->dep].group_rc;

		if (rc == 0) {
			struct store_ent e = { .seq = s->h.seq, .time_ns = s->time_ns, .offset = s->h.offset,
					       .len = s->rec_len, .segment = s->h.segment, .dep = (uint16_t)s->dep };
			pthread_mutex_lock(&st->mu);
			if (idx_push(st, &e) < 0)
				rc = -ENOMEM;
			pthread_mutex_unlock(&st->mu);
			s->h.saved = rc == 0;
			if (rc == 0) {
				count(st, ROW_THREAD, STORE_acked, 1);
				count(st, ROW_THREAD, STORE_bytes, s->rec_pad);
			}
		}
		slot_finish(st, si, rc);
	}
}

static int sweep_run(struct store *st);

static bool group_due(struct store *st, bool stop, uint64_t deadline_ns)
{
	return st->n_pending && !st->n_inflight &&
	       (stop || st->n_pending >= st->conf.group_max || vg_clock_ns() >= st->oldest_pending_ns + deadline_ns);
}

/*
 * The store thread: take queued jobs, seal their records (while the previous group's write and
 * fdatasync are in flight: the CPU work overlaps the device's), and submit the next group as
 * soon as the one in flight completes and a group is due (group_max records, or the oldest has
 * waited group_deadline_us).
 */
static void *store_thread(void *arg)
{
	struct store *st = arg;
	uint64_t deadline_ns = (uint64_t)st->conf.group_deadline_us * 1000;
	bool stop = false;

	st->tj = tjInitCompress();
	while (!stop || st->n_pending || st->n_inflight) {
		struct job jobs[64];
		unsigned nj = 0;

		pthread_mutex_lock(&st->mu);
		while (!st->q_len && !stop && !st->n_inflight) {
			uint64_t now = vg_clock_ns();
			struct timespec ts;

			if (!st->n_pending) {
				/* idle: sleep until work comes or the sweeper is due */
				if (now >= st->next_sweep_ns)
					break;
				clock_gettime(CLOCK_REALTIME, &ts);
				uint64_t w = (uint64_t)ts.tv_sec * VG_NS_PER_SEC + (uint64_t)ts.tv_nsec + (st->next_sweep_ns - now);
				ts.tv_sec = (time_t)(w / VG_NS_PER_SEC);
				ts.tv_nsec = (long)(w % VG_NS_PER_SEC);
				pthread_cond_timedwait(&st->work_cv, &st->mu, &ts);
				continue;
			}
			if (st->n_pending >= st->conf.group_max || now >= st->oldest_pending_ns + deadline_ns)
				break;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t wake = (uint64_t)ts.tv_sec * VG_NS_PER_SEC + (uint64_t)ts.tv_nsec +
					(st->oldest_pending_ns + deadline_ns - now);
			ts.tv_sec = (time_t)(wake / VG_NS_PER_SEC);
			ts.tv_nsec = (long)(wake % VG_NS_PER_SEC);
			pthread_cond_timedwait(&st->work_cv, &st->mu, &ts);
		}
		while (st->q_len && nj < VG_ARRAY_SIZE(jobs)) {
			jobs[nj++] = st->queue[st->q_head];
			st->q_head = (st->q_head + 1) % st->q_cap;
			st->q_len--;
		}
		pthread_mutex_unlock(&st->mu);

		for (unsigned j = 0; j < nj; j++) {
			struct job *jb = &jobs[j];
			int rc;

			if (jb->kind == JOB_PUT) {
				rc = slot_prepare(st, jb->slot);
				if (rc < 0) {
					slot_finish(st, jb->slot, rc);
					continue;
				}
				if (!st->n_pending)
					st->oldest_pending_ns = vg_clock_ns();
				st->pending[st->n_pending++] = jb->slot;
				if (st->n_inflight && io_uring_cq_ready(&st->ring) >= st->n_inflight)
					group_reap(st);
				if (group_due(st, false, deadline_ns))
					group_submit(st);
				continue;
			}
			/* Control jobs run with nothing pending or in flight, so they never overtake a put. */
			while (st->n_pending || st->n_inflight) {
				if (st->n_inflight)
					group_reap(st);
				else
					group_submit(st);
			}
			if (jb->kind == JOB_STOP) {
				stop = true;
				rc = 0;
			} else if (jb->kind == JOB_SWEEP) {
				rc = sweep_run(st);
				st->next_sweep_ns = vg_clock_ns() + st->sweep_every_ns;
			} else if (jb->kind == JOB_DEP_OPEN) {
				struct recover_ctx c = { 0 };
				rc = dep_load(st, jb->ctl->dep, true, &c);
				free(c.ops);
			} else {
				rc = dep_shred(st, jb->ctl->dep);
			}
			pthread_mutex_lock(&st->mu);
			jb->ctl->rc = rc;
			jb->ctl->done = true;
			pthread_cond_broadcast(&st->done_cv);
			pthread_mutex_unlock(&st->mu);
		}
		/* The retention sweeper, every sweep_interval_s, when nothing is pending or in flight. */
		if (!st->n_pending && !st->n_inflight && !stop && vg_clock_ns() >= st->next_sweep_ns) {
			int rc = sweep_run(st);
			if (rc < 0)
				VG_LOG(STORE, WARN, "retention sweep: %s", vg_strerror(rc));
			st->next_sweep_ns = vg_clock_ns() + st->sweep_every_ns;
		}
		/* Block on the device only when there is nothing left to seal. */
		if (st->n_inflight && (!nj || io_uring_cq_ready(&st->ring) >= st->n_inflight))
			group_reap(st);
		if (group_due(st, stop, deadline_ns))
			group_submit(st);
	}
	tjDestroy(st->tj);
	return NULL;
}

/* Post a control job and wait for it. */
static int ctl_run(struct store *st, enum job_kind kind, uint64_t dep)
{
	struct store_ctl ctl = { .kind = kind, .dep = dep };

	pthread_mutex_lock(&st->mu);
	while (st->q_len == st->q_cap)
		pthread_cond_wait(&st->done_cv, &st->mu);
	st->queue[(st->q_head + st->q_len++) % st->q_cap] = (struct job){ .kind = kind, .ctl = &ctl };
	pthread_cond_signal(&st->work_cv);
	while (!ctl.done)
		pthread_cond_wait(&st->done_cv, &st->mu);
	pthread_mutex_unlock(&st->mu);
	return ctl.rc;
}

/* ---- the API ---------------------------------------------------------------------------------- */
void store_handle_unsaved(struct store_handle *h, const struct store_alert *alert)
{
	*h = (struct store_handle){ .deployment = alert ? alert->deployment : 0, .saved = false };
}

int store_deployment_open(struct store *st, uint64_t deployment)
{
	return ctl_run(st, JOB_DEP_OPEN, deployment);
}

int store_deployment_shred(struct store *st, uint64_t deployment)
{
	pthread_mutex_lock(&st->mu);
	int di = dep_find(st, deployment);
	if (di >= 0)
		st->deps[di].live = false; /* refuse new puts now; queued ones fail with -ENOENT */
	pthread_mutex_unlock(&st->mu);
	if (di < 0)
		return -ENOENT;
	return ctl_run(st, JOB_SHRED, deployment);
}

int store_put_async(struct store *st, const struct store_alert *alert, const struct store_crop *crop,
		    store_ack_fn *ack, void *arg)
{
	struct store_slot *s;
	uint32_t si;
	int di;

	if (!alert || !crop || !crop->data || !crop->len)
		return -EINVAL;
	if (crop->len > st->conf.max_crop_bytes)
		return -EMSGSIZE;
	if (crop->format == STORE_CROP_RGB &&
	    (!crop->width || !crop->height || (uint64_t)crop->width * crop->height * 3 != crop->len))
		return -EINVAL;
	if (crop->format != STORE_CROP_RGB && crop->format != STORE_CROP_JPEG)
		return -EINVAL;
	pthread_mutex_lock(&st->mu);
	count(st, ROW_LOCKED, STORE_puts, 1);
	di = dep_find(st, alert->deployment);
	if (di < 0) {
		pthread_mutex_unlock(&st->mu);
		return -ENOENT;
	}
	if (!st->n_free) {
		count(st, ROW_LOCKED, STORE_queue_full, 1);
		pthread_mutex_unlock(&st->mu);
		return -EAGAIN;
	}
	si = st->free_slots[--st->n_free];
	pthread_mutex_unlock(&st->mu);

	s = &st->slots[si];
	s->alert = *alert;
	s->fmt = crop->format;
	s->width = crop->width;
	s->height = crop->height;
	/* Copy outside the lock, once: a JPEG straight to where it is sealed in place (~3 us for
	 * 30 KB), an RGB crop to the encoder's input. */
	if (crop->format == STORE_CROP_JPEG) {
		s->in_len = 0;
		s->jpeg_len = crop->len;
		memcpy(s->rec + STORE_REC_HDR + STORE_ALERT_BYTES, crop->data, crop->len);
	} else {
		s->in_len = crop->len;
		s->jpeg_len = 0;
		memcpy(s->in, crop->data, crop->len);
	}
	s->dep = di;
	s->ack = ack;
	s->arg = arg;

	pthread_mutex_lock(&st->mu);
	st->queue[(st->q_head + st->q_len++) % st->q_cap] = (struct job){ .kind = JOB_PUT, .slot = si };
	pthread_cond_signal(&st->work_cv);
	pthread_mutex_unlock(&st->mu);
	return 0;
}

struct put_wait {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
	int rc;
	struct store_handle h;
};

static void put_wait_ack(void *arg, int rc, const struct store_handle *h)
{
	struct put_wait *w = arg;

	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->h = *h;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int store_put(struct store *st, const struct store_alert *alert, const struct store_crop *crop,
	      struct store_handle *out)
{
	struct put_wait w = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	int rc = store_put_async(st, alert, crop, put_wait_ack, &w);

	if (rc < 0) {
		if (rc == -EAGAIN || rc == -ENOENT) {
			pthread_mutex_lock(&st->mu);
			count(st, ROW_LOCKED, STORE_unsaved, 1);
			pthread_mutex_unlock(&st->mu);
		}
		store_handle_unsaved(out, alert);
		return rc;
	}
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	*out = w.h;
	return w.rc;
}

int store_get(struct store *st, const struct store_handle *h, struct store_alert *alert, uint8_t *jpeg, size_t cap,
	      size_t *jpeg_len)
{
	struct store_dep d; /* a copy of its key, scrubbed before return */
	struct store_ent e;
	struct store_rec_hdr rh;
	char path[4096];
	uint8_t *buf;
	ssize_t r;
	int fd, rc;

	pthread_mutex_lock(&st->mu);
	struct store_ent *ep = idx_find(st, h->seq);
	if (!ep || ep->deleted || ep->corrupt || st->deps[ep->dep].id != h->deployment || !st->deps[ep->dep].live) {
		pthread_mutex_unlock(&st->mu);
		return -ENOENT;
	}
	e = *ep;
	/* only what is fixed while the deployment is live: the store thread moves the rest */
	d.id = st->deps[e.dep].id;
	memcpy(d.key, st->deps[e.dep].key, sizeof(d.key));
	memcpy(&d.gcm, &st->deps[e.dep].gcm, sizeof(d.gcm));
	pthread_mutex_unlock(&st->mu);

	rc = -ENOMEM;
	buf = malloc(e.len);
	if (!buf)
		goto out_scrub_key;
	seg_path(st, d.id, e.segment, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? -ENOENT : -EIO;
		goto out_free_buf;
	}
	r = pread(fd, buf, e.len, (off_t)e.offset);
	close(fd);
	rc = -EIO;
	if (r != (ssize_t)e.len)
		goto out_free_buf;
	rc = -EBADMSG;
	if (store_rec_hdr_decode(buf, &rh) < 0 || rh.seq != e.seq || rh.deployment != d.id ||
	    rh.type != STORE_REC_EVIDENCE || STORE_REC_HDR + rh.len != e.len || !store_rec_crc_ok(buf, rh.len) ||
	    rh.len < STORE_ALERT_BYTES + STORE_TAG_BYTES)
		goto out_free_buf;
	if (rec_open(&d, &rh, buf + STORE_REC_HDR, rh.len) < 0)
		goto out_free_buf;
	size_t jl = rh.len - STORE_ALERT_BYTES - STORE_TAG_BYTES;
	if (jpeg_len)
		*jpeg_len = jl;
	rc = -ENOBUFS;
	if (jl > cap && jpeg)
		goto out_free_buf;
	if (alert)
		store_alert_decode(buf + STORE_REC_HDR, alert);
	if (jpeg)
		memcpy(jpeg, buf + STORE_REC_HDR + STORE_ALERT_BYTES, jl);
	rc = 0;
out_free_buf:
	vg_scrub(buf, e.len);
	free(buf);
out_scrub_key:
	sodium_memzero(&d, sizeof(d));
	return rc;
}

int store_outcome_set(struct store *st, const struct store_handle *h, enum store_outcome outcome)
{
	struct store_ent *e;
	int rc, di;

	if (outcome > STORE_OUTCOME_REJECTED)
		return -EINVAL;
	pthread_mutex_lock(&st->meta_mu);
	pthread_mutex_lock(&st->mu);
	e = idx_find(st, h->seq);
	di = e && !e->deleted && st->deps[e->dep].id == h->deployment && st->deps[e->dep].live ? e->dep : -1;
	pthread_mutex_unlock(&st->mu);
	rc = di < 0 ? -ENOENT : meta_append(st, &st->deps[di], STORE_REC_OUTCOME, h->seq, (uint8_t)outcome);
	if (rc == 0) {
		pthread_mutex_lock(&st->mu);
		e = idx_find(st, h->seq);
		if (e)
			e->outcome = (uint8_t)outcome;
		pthread_mutex_unlock(&st->mu);
	}
	pthread_mutex_unlock(&st->meta_mu);
	return rc;
}

static uint64_t retention_ns(const struct store *st, unsigned outcome)
{
	uint64_t s = outcome == STORE_OUTCOME_CONFIRMED ? st->conf.retain_confirmed_s
		   : outcome == STORE_OUTCOME_REJECTED ? st->conf.retain_rejected_s
						       : st->conf.retain_unreviewed_s;
	return s * VG_NS_PER_SEC;
}

/* Remove segments other than the active one that hold no live record (cost: segments x index). */
static void sweep_segments(struct store *st, unsigned di)
{
	struct store_dep *d = &st->deps[di];
	char dir[4096], path[4096];
	uint32_t *segs;
	size_t n;

	dep_path(st, d->id, NULL, dir, sizeof(dir));
	if (seg_list(dir, &segs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool live = segs[i] == d->seg_no;

		for (size_t k = 0; k < st->n_idx && !live; k++)
			live = st->idx[k].dep == di && st->idx[k].segment == segs[i] && !st->idx[k].deleted &&
			       !st->idx[k].corrupt;
		if (!live) {
			seg_path(st, d->id, segs[i], path, sizeof(path));
			unlink(path);
		}
	}
	free(segs);
	fsync_dir(dir);
}

static int sweep_run(struct store *st)
{
	uint64_t now = store_now(st);
	uint64_t *seqs = NULL;
	size_t n = 0;
	int rc = 0, deleted = 0;

	pthread_mutex_lock(&st->meta_mu);
	pthread_mutex_lock(&st->mu);
	seqs = malloc((st->n_idx + 1) * sizeof(*seqs));
	for (size_t i = 0; seqs && i < st->n_idx; i++) {
		const struct store_ent *e = &st->idx[i];
		if (!e->deleted && st->deps[e->dep].live && e->time_ns + retention_ns(st, e->outcome) <= now)
			seqs[n++] = e->seq;
	}
	pthread_mutex_unlock(&st->mu);
	if (!seqs) {
		pthread_mutex_unlock(&st->meta_mu);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		struct store_ent e;
		struct store_handle h;

		pthread_mutex_lock(&st->mu);
		e = *idx_find(st, seqs[i]);
		pthread_mutex_unlock(&st->mu);
		/* the tombstone first: a crash after it finishes the deletion on the next open */
		rc = meta_append(st, &st->deps[e.dep], STORE_REC_DELETE, e.seq, STORE_DELETE_RETENTION);
		if (rc < 0)
			break;
		pthread_mutex_lock(&st->mu);
		idx_find(st, seqs[i])->deleted = 1;
		count(st, ROW_LOCKED, STORE_deleted, 1);
		ent_handle(st, &e, &h);
		pthread_mutex_unlock(&st->mu);
		rc = punch(st, &e);
		if (rc < 0)
			break;
		deleted++;
		if (!e.corrupt && st->conf.on_delete)
			st->conf.on_delete(st->conf.on_delete_arg, &h, (enum store_outcome)e.outcome, STORE_DELETE_RETENTION);
	}
	pthread_mutex_lock(&st->mu);
	for (unsigned di = 0; di < st->n_deps; di++)
		if (st->deps[di].live)
			sweep_segments(st, di);
	pthread_mutex_unlock(&st->mu);
	pthread_mutex_unlock(&st->meta_mu);
	free(seqs);
	return rc < 0 ? rc : deleted;
}

int store_sweep(struct store *st)
{
	return ctl_run(st, JOB_SWEEP, 0);
}

uint64_t store_count(struct store *st)
{
	uint64_t n = 0;

	pthread_mutex_lock(&st->mu);
	for (size_t i = 0; i < st->n_idx; i++)
		n += !st->idx[i].deleted && !st->idx[i].corrupt && st->deps[st->idx[i].dep].live;
	pthread_mutex_unlock(&st->mu);
	return n;
}

void store_stats(const struct store *st, struct store_stats *out)
{
	uint64_t v[STORE__COUNT];

	vg_counter_block_read(st->counters, v);
	memcpy(out, v, sizeof(*out));
}

/* ---- open and close ------------------------------------------------------------------------- */
static void store_free(struct store *st)
{
	for (unsigned i = 0; st->deps && i < st->n_deps; i++)
		dep_close_files(st, i);
	if (st->ring.ring_fd >= 0 && !st->no_uring)
		io_uring_queue_exit(&st->ring);
	if (st->slab) {
		vg_scrub(st->slab, st->slab_len);
		munmap(st->slab, st->slab_len);
	}
	vg_counter_block_destroy(&st->counters);
	sodium_memzero(st->appliance_key, sizeof(st->appliance_key));
	pthread_mutex_destroy(&st->mu);
	pthread_mutex_destroy(&st->meta_mu);
	pthread_cond_destroy(&st->work_cv);
	pthread_cond_destroy(&st->done_cv);
	free(st->idx);
	free(st->queue);
	free(st->free_slots);
	free(st->slots);
	free(st->pending);
	free(st->group);
	free(st->iov);
	free(st->dir);
	if (st->lock_fd >= 0)
		close(st->lock_fd);
	free(st);
}

static int recover_all(struct store *st, char *err, size_t errlen)
{
	DIR *dp = opendir(st->dir);
	struct recover_ctx c = { 0 };
	struct dirent *de;
	int rc = 0;

	if (!dp)
		return vg_errf(err, errlen, -errno, "store: cannot read %s: %s", st->dir, vg_strerror(-errno));
	while (rc == 0 && (de = readdir(dp))) {
		char *end, path[4096];
		unsigned long long id;

		if (strncmp(de->d_name, "dep-", 4))
			continue;
		id = strtoull(de->d_name + 4, &end, 16);
		if (*end)
			continue;
		dep_path(st, id, "key", path, sizeof(path));
		if (access(path, F_OK) < 0) {
			/* a shred that crashed after destroying the key: finish it */
			dep_path(st, id, NULL, path, sizeof(path));
			rm_tree_files(path);
			VG_LOG(STORE, NOTICE, "finished shredding deployment %016llx", id);
			continue;
		}
		rc = dep_load(st, id, false, &c);
		if (rc < 0)
			vg_errf(err, errlen, rc, "store: deployment %016llx: %s", id,
				rc == -EKEYREJECTED ? "the appliance key does not open its data key" : vg_strerror(rc));
	}
	closedir(dp);
	if (rc == 0) {
		if (st->n_idx)
			qsort(st->idx, st->n_idx, sizeof(*st->idx), ent_cmp);
		apply_meta(st, c.ops, c.n_ops);
		for (size_t i = 0; i < st->n_idx; i++) {
			struct store_ent *e = &st->idx[i];
			if (e->deleted && !e->corrupt)
				punch(st, e); /* a tombstone whose punch a crash interrupted */
			else if (!e->deleted && e->corrupt)
				count(st, ROW_THREAD, STORE_corrupt_dropped, 1);
			else if (!e->deleted)
				count(st, ROW_THREAD, STORE_recovered, 1);
		}
	}
	free(c.ops);
	return rc;
}

int store_open(struct store **out, const struct store_conf *conf, char *err, size_t errlen)
{
	struct store *st;
	size_t slots_len;
	int rc;

	if (!conf || !conf->dir)
		return vg_errf(err, errlen, -EINVAL, "store: no directory configured");
	if (sodium_init() < 0)
		return vg_errf(err, errlen, -ENOTSUP, "store: libsodium failed to initialise");
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->conf = *conf;
	if (!st->conf.segment_bytes)
		st->conf.segment_bytes = 64u << 20;
	if (!st->conf.group_max)
		st->conf.group_max = 16;
	if (!st->conf.slots)
		st->conf.slots = 64;
	if (st->conf.group_max > 1024)
		st->conf.group_max = 1024;
	if (!st->conf.max_crop_bytes)
		st->conf.max_crop_bytes = 256u << 10;
	if (!st->conf.retain_confirmed_s)
		st->conf.retain_confirmed_s = 31 * 86400ull;
	if (!st->conf.retain_rejected_s)
		st->conf.retain_rejected_s = 86400;
	if (!st->conf.retain_unreviewed_s)
		st->conf.retain_unreviewed_s = 86400;
	if (!st->conf.sweep_interval_s)
		st->conf.sweep_interval_s = 60;
	if (!st->conf.jpeg_quality || st->conf.jpeg_quality > 100)
		st->conf.jpeg_quality = 90;
	if (!st->conf.clock)
		st->conf.clock = clock_default;
	st->o_direct = conf->o_direct;
	st->align = st->o_direct ? 4096 : 8;
	st->cipher = crypto_aead_aes256gcm_is_available() ? STORE_CIPHER_AES256GCM : STORE_CIPHER_XCHACHA20POLY1305;
	randombytes_buf(st->nonce_prefix, sizeof(st->nonce_prefix));
	st->next_seq = 1;
	pthread_mutex_init(&st->mu, NULL);
	pthread_mutex_init(&st->meta_mu, NULL);
	pthread_cond_init(&st->work_cv, NULL);
	pthread_cond_init(&st->done_cv, NULL);
	st->ring.ring_fd = -1;
	st->lock_fd = -1;

	rc = vg_counter_block_create(&st->counters, "store", store_counter_desc, STORE__COUNT, 2);
	if (rc < 0)
		goto out_free;
	st->row[0] = vg_counter_block_row(st->counters, ROW_THREAD);
	st->row[1] = vg_counter_block_row(st->counters, ROW_LOCKED);

	st->dir = strdup(conf->dir);
	rc = -ENOMEM;
	if (!st->dir)
		goto out_free;
	if (mkdir(st->dir, 0700) < 0 && errno != EEXIST) {
		rc = vg_errf(err, errlen, -errno, "store: cannot make %s: %s", st->dir, vg_strerror(-errno));
		goto out_free;
	}
	/* Two processes appending to one store would hand out the same sequence numbers and offsets:
	 * the second is refused while the first holds the lock (released by the kernel if it dies). */
	{
		char lock_path[4096];

		snprintf(lock_path, sizeof(lock_path), "%s/lock", st->dir);
		st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		if (st->lock_fd < 0) {
			rc = vg_errf(err, errlen, -errno, "store: %s: %s", lock_path, vg_strerror(-errno));
			goto out_free;
		}
		if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0) {
			rc = vg_errf(err, errlen, -EBUSY, "store: %s is in use by another process", st->dir);
			goto out_free;
		}
	}
	rc = appliance_key_load(st, err, errlen);
	if (rc < 0)
		goto out_free;

	/* Slots: the crop as handed in, and the record as written (4 KiB aligned for O_DIRECT and
	 * registered with the ring). Biometric: kept out of core dumps and, where allowed, of swap. */
	st->n_slots = st->conf.slots;
	st->in_cap = store_align_up(st->conf.max_crop_bytes, 4096);
	st->rec_cap = store_align_up(STORE_REC_HDR + STORE_ALERT_BYTES + st->conf.max_crop_bytes + STORE_TAG_BYTES, 4096) + 4096;
	slots_len = (size_t)st->n_slots * (st->in_cap + st->rec_cap);
	st->slab_len = slots_len + store_align_up(STORE_MAX_DEPLOYMENTS * sizeof(struct store_dep), 4096);
	st->slab = mmap(NULL, st->slab_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (st->slab == MAP_FAILED) {
		st->slab = NULL;
		rc = -ENOMEM;
		goto out_free;
	}
	madvise(st->slab, st->slab_len, MADV_DONTDUMP);
	if (mlock(st->slab, st->slab_len) < 0)
		count(st, ROW_THREAD, STORE_mlock_fail, 1);
	st->deps = (struct store_dep *)(st->slab + slots_len);
	st->slots = calloc(st->n_slots, sizeof(*st->slots));
	st->free_slots = calloc(st->n_slots, sizeof(*st->free_slots));
	st->pending = calloc(st->n_slots, sizeof(*st->pending));
	st->group = calloc(st->n_slots, sizeof(*st->group));
	st->iov = calloc(st->n_slots, sizeof(*st->iov));
	st->q_cap = st->n_slots + 16;
	st->queue = calloc(st->q_cap, sizeof(*st->queue));
	rc = -ENOMEM;
	if (!st->slots || !st->free_slots || !st->pending || !st->group || !st->iov || !st->queue)
		goto out_free;
	for (uint32_t i = 0; i < st->n_slots; i++) {
		st->slots[i].in = st->slab + (size_t)i * (st->in_cap + st->rec_cap);
		st->slots[i].rec = st->slots[i].in + st->in_cap;
		st->free_slots[st->n_free++] = st->n_slots - 1 - i;
	}

	/* The ring: room for a full group of writes plus one fdatasync per deployment. */
	rc = conf->no_io_uring ? -ENOSYS : io_uring_queue_init(st->n_slots + STORE_MAX_DEPLOYMENTS + 8, &st->ring, 0);
	if (rc < 0) {
		/* io_uring refused (seccomp, kernel.io_uring_disabled, an old kernel): the same
		 * groups through pwritev and fdatasync on the store thread, counted. */
		VG_LOG(STORE, WARN, "io_uring unavailable (%s): writing with pwritev+fdatasync", vg_strerror(rc));
		count(st, ROW_THREAD, STORE_fallback_uring, 1);
		st->no_uring = true;
		st->ring.ring_fd = -1;
	} else {
		struct iovec iov = { .iov_base = st->slab, .iov_len = slots_len };
		int fds[STORE_MAX_DEPLOYMENTS];

		/* Registered buffers pin the slab (RLIMIT_MEMLOCK); registered files skip the fd
		 * table lookup per write. Either can be refused: plain writes work, counted. */
		st->regbuf = io_uring_register_buffers(&st->ring, &iov, 1) == 0;
		if (!st->regbuf)
			count(st, ROW_THREAD, STORE_fallback_regbuf, 1);
		for (int i = 0; i < STORE_MAX_DEPLOYMENTS; i++)
			fds[i] = -1;
		st->regfile = io_uring_register_files(&st->ring, fds, STORE_MAX_DEPLOYMENTS) == 0;
		if (!st->regfile)
			count(st, ROW_THREAD, STORE_fallback_regfile, 1);
	}

	rc = recover_all(st, err, errlen);
	if (rc < 0)
		goto out_free;
	st->sweep_every_ns = (uint64_t)st->conf.sweep_interval_s * VG_NS_PER_SEC;
	st->next_sweep_ns = vg_clock_ns() + st->sweep_every_ns;
	rc = pthread_create(&st->thread, NULL, store_thread, st);
	if (rc) {
		rc = vg_errf(err, errlen, -rc, "store: cannot start the store thread");
		goto out_free;
	}
	st->thread_started = true;
	*out = st;
	return 0;
out_free:
	store_free(st);
	return rc;
}

void store_close(struct store **stp)
{
	struct store *st = *stp;

	if (!st)
		return;
	if (st->thread_started) {
		ctl_run(st, JOB_STOP, 0);
		pthread_join(st->thread, NULL);
	}
	/* store_free closes the deployments' files, then scrubs the slab that holds their keys. Zeroing
	 * the keys here first made their descriptors read as fd 0: closing those closed whatever a
	 * long-lived caller (vigild serve) had there, and leaked the real ones. */
	store_free(st);
	*stp = NULL;
}
