/*
 * Recovery of the evidence store: the in-memory index of records (built here at open, appended to
 * by the store thread), the meta journal of outcomes and tombstones, and the scan of every
 * deployment's journal and segments that drops torn tails and corrupt records before the store
 * thread starts.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_file.h"
#include "vg_log.h"

/* The largest file recovery reads whole. A segment holds at most segment_bytes (a uint32_t), or
 * one record when that one alone is bigger; the meta journal (88 bytes an outcome or tombstone)
 * stays far below. A bigger file is none the store wrote. */
#define STORE_FILE_MAX ((size_t)UINT32_MAX + STORE_REC_MAX_LEN + 2 * 4096)

/* ---- the index -------------------------------------------------------------------------------- */
int store_idx_push(struct store *st, const struct store_ent *e)
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

struct store_ent *store_idx_find(struct store *st, uint64_t seq)
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

int store_dep_find(struct store *st, uint64_t id)
{
	for (unsigned i = 0; i < st->n_deps; i++)
		if (st->deps[i].id == id && st->deps[i].live)
			return (int)i;
	return -1;
}

void store_ent_handle(const struct store *st, const struct store_ent *e, struct store_handle *h)
{
	*h = (struct store_handle){ .deployment = st->deps[e->dep].id, .seq = e->seq, .segment = e->segment,
				    .len = e->len, .offset = e->offset, .saved = true };
}

/* ---- the meta journal ------------------------------------------------------------------------- */
#define META_PAYLOAD 16

int store_meta_append(struct store *st, struct store_dep *d, enum store_rec_type type, uint64_t seq, uint8_t val)
{
	uint8_t rec[STORE_REC_HDR + META_PAYLOAD] = { 0 };
	struct store_rec_hdr h = { .version = STORE_VERSION, .type = (uint8_t)type, .cipher = STORE_CIPHER_NONE,
				   .len = META_PAYLOAD, .seq = seq, .deployment = d->id, .time_ns = store_now(st) };
	int rc;

	for (int i = 0; i < 8; i++)
		rec[STORE_REC_HDR + i] = (uint8_t)(seq >> (8 * i));
	rec[STORE_REC_HDR + 8] = val;
	store_rec_hdr_encode(rec, &h, rec + STORE_REC_HDR);
	rc = store_write_sync(d->meta_fd, rec, sizeof(rec), d->meta_end);
	if (rc < 0) {
		/* cut back whatever part landed, so the journal stays a clean sequence */
		if (ftruncate(d->meta_fd, (off_t)d->meta_end) == 0)
			fdatasync(d->meta_fd);
		return rc;
	}
	d->meta_end += store_align_up(sizeof(rec), 8);
	return 0;
}

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
		c->rc = store_idx_push(st, &e);
}

int store_seg_list(const char *dir, uint32_t **out, size_t *n)
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
	store_dep_path(st, d->id, NULL, dir, sizeof(dir));

	store_dep_path(st, d->id, "meta", path, sizeof(path));
	rc = vg_file_read(path, STORE_FILE_MAX, &buf, &len);
	if (rc == -ENOENT) {
		rc = store_seg_create(st, d, 0, true, &d->meta_fd, &d->meta_end);
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

	rc = store_seg_list(dir, &segs, &n_segs);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n_segs; i++) {
		struct store_seg_hdr sh;
		struct store_scan_result res;
		bool last = i + 1 == n_segs;

		store_seg_path(st, d->id, segs[i], path, sizeof(path));
		rc = vg_file_read(path, STORE_FILE_MAX, &buf, &len);
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
				rc = store_seg_open_fd(st, path, O_RDWR);
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

		rc = store_seg_create(st, d, no, false, &d->seg_fd, &d->seg_end);
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
		struct store_ent *e = store_idx_find(st, ops[i].seq);

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

/* ---- deployments ------------------------------------------------------------------------------ */
/* Load deployment ID from disk or make it (CREATE). Store thread, or store_open before it starts. */
int store_dep_load(struct store *st, uint64_t id, bool create, struct recover_ctx *c)
{
	struct store_dep *d;
	char dir[4096];
	unsigned di;
	int rc;

	if (store_dep_find(st, id) >= 0)
		return 0; /* open already */
	for (di = 0; di < st->n_deps; di++)
		if (!st->deps[di].live)
			break; /* a shredded slot is reused */
	if (di == STORE_MAX_DEPLOYMENTS)
		return -ENOSPC;
	d = &st->deps[di];
	*d = (struct store_dep){ .id = id, .seg_fd = -1, .meta_fd = -1 };
	store_dep_path(st, id, NULL, dir, sizeof(dir));
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	rc = store_fsync_dir(st->dir);
	if (rc == 0)
		rc = store_dep_key_load(st, d, create);
	if (rc == 0 && st->cipher == STORE_CIPHER_AES256GCM)
		crypto_aead_aes256gcm_beforenm(&d->gcm, d->key);
	if (rc == 0)
		rc = dep_recover(st, di, c);
	if (rc == 0)
		rc = store_ring_file_set(st, di, d->seg_fd);
	if (rc < 0) {
		store_dep_close_files(st, di);
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

int store_recover_all(struct store *st, char *err, size_t errlen)
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
		store_dep_path(st, id, "key", path, sizeof(path));
		if (access(path, F_OK) < 0) {
			/* a shred that crashed after destroying the key: finish it */
			store_dep_path(st, id, NULL, path, sizeof(path));
			store_rm_tree_files(path);
			VG_LOG(STORE, NOTICE, "finished shredding deployment %016llx", id);
			continue;
		}
		rc = store_dep_load(st, id, false, &c);
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
				store_punch(st, e); /* a tombstone whose punch a crash interrupted */
			else if (!e->deleted && e->corrupt)
				count(st, ROW_THREAD, STORE_corrupt_dropped, 1);
			else if (!e->deleted)
				count(st, ROW_THREAD, STORE_recovered, 1);
		}
	}
	free(c.ops);
	return rc;
}
