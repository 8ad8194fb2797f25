/*
 * Retention of the evidence store: the store thread's sweep that tombstones and punches out every
 * record past its outcome's retention period, then removes segments left with no live record.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_clock.h"

/* ---- retention -------------------------------------------------------------------------------- */
/* Punch out a deleted record's payload (its header stays, so the scan still steps over it). */
int store_punch(struct store *st, const struct store_ent *e)
{
	char path[4096];
	int fd, rc = 0;

	store_seg_path(st, st->deps[e->dep].id, e->segment, path, sizeof(path));
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

	store_dep_path(st, d->id, NULL, dir, sizeof(dir));
	if (store_seg_list(dir, &segs, &n) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		bool live = segs[i] == d->seg_no;

		for (size_t k = 0; k < st->n_idx && !live; k++)
			live = st->idx[k].dep == di && st->idx[k].segment == segs[i] && !st->idx[k].deleted &&
			       !st->idx[k].corrupt;
		if (!live) {
			store_seg_path(st, d->id, segs[i], path, sizeof(path));
			unlink(path);
		}
	}
	free(segs);
	store_fsync_dir(dir);
}

int store_sweep_run(struct store *st)
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
		e = *store_idx_find(st, seqs[i]);
		pthread_mutex_unlock(&st->mu);
		/* the tombstone first: a crash after it finishes the deletion on the next open */
		rc = store_meta_append(st, &st->deps[e.dep], STORE_REC_DELETE, e.seq, STORE_DELETE_RETENTION);
		if (rc < 0)
			break;
		pthread_mutex_lock(&st->mu);
		store_idx_find(st, seqs[i])->deleted = 1;
		count(st, ROW_LOCKED, STORE_deleted, 1);
		store_ent_handle(st, &e, &h);
		pthread_mutex_unlock(&st->mu);
		rc = store_punch(st, &e);
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
