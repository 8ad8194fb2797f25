/*
 * The evidence store's API (store.h): open and close, puts, reads, outcomes, deployments. One
 * store thread owns an io_uring and the active segment of every deployment; callers queue records
 * into fixed slots and are acknowledged once an fdatasync covering their write has completed.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"
#include "vg_pool.h"

static uint64_t clock_default(void *arg)
{
	(void)arg;
	return vg_clock_realtime_ns();
}

/* ---- the API ---------------------------------------------------------------------------------- */
void store_handle_unsaved(struct store_handle *h, const struct store_alert *alert)
{
	*h = (struct store_handle){ .deployment = alert ? alert->deployment : 0, .saved = false };
}

int store_deployment_open(struct store *st, uint64_t deployment)
{
	return store_ctl_run(st, JOB_DEP_OPEN, deployment);
}

int store_deployment_shred(struct store *st, uint64_t deployment)
{
	pthread_mutex_lock(&st->mu);
	int di = store_dep_find(st, deployment);
	if (di >= 0)
		st->deps[di].live = false; /* refuse new puts now; queued ones fail with -ENOENT */
	pthread_mutex_unlock(&st->mu);
	if (di < 0)
		return -ENOENT;
	return store_ctl_run(st, JOB_SHRED, deployment);
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
	di = store_dep_find(st, alert->deployment);
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
	struct store_ent *ep = store_idx_find(st, h->seq);
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
	store_seg_path(st, d.id, e.segment, path, sizeof(path));
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
	if (store_rec_open(&d, &rh, buf + STORE_REC_HDR, rh.len) < 0)
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
	e = store_idx_find(st, h->seq);
	di = e && !e->deleted && st->deps[e->dep].id == h->deployment && st->deps[e->dep].live ? e->dep : -1;
	pthread_mutex_unlock(&st->mu);
	rc = di < 0 ? -ENOENT : store_meta_append(st, &st->deps[di], STORE_REC_OUTCOME, h->seq, (uint8_t)outcome);
	if (rc == 0) {
		pthread_mutex_lock(&st->mu);
		e = store_idx_find(st, h->seq);
		if (e)
			e->outcome = (uint8_t)outcome;
		pthread_mutex_unlock(&st->mu);
	}
	pthread_mutex_unlock(&st->meta_mu);
	return rc;
}

int store_sweep(struct store *st)
{
	return store_ctl_run(st, JOB_SWEEP, 0);
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
		store_dep_close_files(st, i);
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

/* The zeros of a store_conf become the defaults store.h documents. */
static void store_conf_defaults(struct store_conf *c)
{
	if (!c->segment_bytes)
		c->segment_bytes = 64u << 20;
	if (!c->group_max)
		c->group_max = 16;
	if (!c->slots)
		c->slots = 64;
	if (c->group_max > 1024)
		c->group_max = 1024;
	if (!c->max_crop_bytes)
		c->max_crop_bytes = 256u << 10;
	if (!c->retain_confirmed_s)
		c->retain_confirmed_s = 31 * 86400ull;
	if (!c->retain_rejected_s)
		c->retain_rejected_s = 86400;
	if (!c->retain_unreviewed_s)
		c->retain_unreviewed_s = 86400;
	if (!c->sweep_interval_s)
		c->sweep_interval_s = 60;
	if (!c->jpeg_quality || c->jpeg_quality > 100)
		c->jpeg_quality = 90;
	if (!c->clock)
		c->clock = clock_default;
}

/* Make the store's directory, and take its lock or refuse. */
static int store_dir_lock(struct store *st, char *err, size_t errlen)
{
	char lock_path[4096];

	if (mkdir(st->dir, 0700) < 0 && errno != EEXIST)
		return vg_errf(err, errlen, -errno, "store: cannot make %s: %s", st->dir, vg_strerror(-errno));
	/* Two processes appending to one store would hand out the same sequence numbers and offsets:
	 * the second is refused while the first holds the lock (released by the kernel if it dies). */
	snprintf(lock_path, sizeof(lock_path), "%s/lock", st->dir);
	st->lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (st->lock_fd < 0)
		return vg_errf(err, errlen, -errno, "store: %s: %s", lock_path, vg_strerror(-errno));
	if (flock(st->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return vg_errf(err, errlen, -EBUSY, "store: %s is in use by another process", st->dir);
	return 0;
}

/* Map the slab (slots, then deployments) and the slot and queue arrays; the slots' part of the
 * slab in *SLOTS_LEN, for the ring to register. */
static int store_slots_alloc(struct store *st, size_t *slots_len /* OUT */)
{
	/* Slots: the crop as handed in, and the record as written (4 KiB aligned for O_DIRECT and
	 * registered with the ring). Biometric: kept out of core dumps and, where allowed, of swap. */
	st->n_slots = st->conf.slots;
	st->in_cap = store_align_up(st->conf.max_crop_bytes, 4096);
	st->rec_cap = store_align_up(STORE_REC_HDR + STORE_ALERT_BYTES + st->conf.max_crop_bytes + STORE_TAG_BYTES, 4096) + 4096;
	*slots_len = (size_t)st->n_slots * (st->in_cap + st->rec_cap);
	st->slab_len = *slots_len + store_align_up(STORE_MAX_DEPLOYMENTS * sizeof(struct store_dep), 4096);
	st->slab = mmap(NULL, st->slab_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (st->slab == MAP_FAILED) {
		st->slab = NULL;
		return -ENOMEM;
	}
	madvise(st->slab, st->slab_len, MADV_DONTDUMP);
	if (mlock(st->slab, st->slab_len) < 0)
		count(st, ROW_THREAD, STORE_mlock_fail, 1);
	st->deps = (struct store_dep *)(st->slab + *slots_len);
	st->slots = calloc(st->n_slots, sizeof(*st->slots));
	st->free_slots = calloc(st->n_slots, sizeof(*st->free_slots));
	st->pending = calloc(st->n_slots, sizeof(*st->pending));
	st->group = calloc(st->n_slots, sizeof(*st->group));
	st->iov = calloc(st->n_slots, sizeof(*st->iov));
	st->q_cap = st->n_slots + 16;
	st->queue = calloc(st->q_cap, sizeof(*st->queue));
	if (!st->slots || !st->free_slots || !st->pending || !st->group || !st->iov || !st->queue)
		return -ENOMEM;
	for (uint32_t i = 0; i < st->n_slots; i++) {
		st->slots[i].in = st->slab + (size_t)i * (st->in_cap + st->rec_cap);
		st->slots[i].rec = st->slots[i].in + st->in_cap;
		st->free_slots[st->n_free++] = st->n_slots - 1 - i;
	}
	return 0;
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
	store_conf_defaults(&st->conf);
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
		goto out_free_store;
	st->row[0] = vg_counter_block_row(st->counters, ROW_THREAD);
	st->row[1] = vg_counter_block_row(st->counters, ROW_LOCKED);

	st->dir = strdup(conf->dir);
	rc = -ENOMEM;
	if (!st->dir)
		goto out_free_store;
	rc = store_dir_lock(st, err, errlen);
	if (rc < 0)
		goto out_free_store;
	rc = store_appliance_key_load(st, err, errlen);
	if (rc < 0)
		goto out_free_store;

	rc = store_slots_alloc(st, &slots_len);
	if (rc < 0)
		goto out_free_store;
	store_ring_init(st, slots_len);
	rc = store_recover_all(st, err, errlen);
	if (rc < 0)
		goto out_free_store;
	st->sweep_every_ns = (uint64_t)st->conf.sweep_interval_s * VG_NS_PER_SEC;
	st->next_sweep_ns = vg_clock_ns() + st->sweep_every_ns;
	rc = pthread_create(&st->thread, NULL, store_thread, st);
	if (rc) {
		rc = vg_errf(err, errlen, -rc, "store: cannot start the store thread");
		goto out_free_store;
	}
	st->thread_started = true;
	*out = st;
	return 0;
out_free_store:
	store_free(st);
	return rc;
}

void store_close(struct store **stp)
{
	struct store *st = *stp;

	if (!st)
		return;
	if (st->thread_started) {
		store_ctl_run(st, JOB_STOP, 0);
		pthread_join(st->thread, NULL);
	}
	/* store_free closes the deployments' files, then scrubs the slab that holds their keys. Zeroing
	 * the keys here first made their descriptors read as fd 0: closing those closed whatever a
	 * long-lived caller (vigild serve) had there, and leaked the real ones. */
	store_free(st);
	*stp = NULL;
}
