/*
 * The store thread of the evidence store: it owns the io_uring and the active segment of every
 * deployment, seals queued records, writes them in groups (per deployment its writes linked, then
 * one fdatasync) and acknowledges each once the group is durable; control jobs run between groups.
 */
#include <errno.h>
#include <liburing.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "store.h"
#include "store_int.h"
#include "vg_clock.h"
#include "vg_log.h"
#include "vg_pool.h"

/* ---- the store thread ------------------------------------------------------------------------- */
int store_ring_file_set(struct store *st, unsigned di, int fd)
{
	if (!st->regfile)
		return 0;
	return io_uring_register_files_update(&st->ring, di, &fd, 1) == 1 ? 0 : -EIO;
}

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
	store_rec_seal(d, &h, pt, STORE_ALERT_BYTES + jlen);
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
			rc = store_seg_create(st, d, d->seg_no + 1, false, &fd, &end);
			if (rc < 0) {
				slot_finish(st, si, rc);
				continue;
			}
			store_ring_file_set(st, (unsigned)s->dep, fd);
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
			if (store_idx_push(st, &e) < 0)
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
void *store_thread(void *arg)
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
				rc = store_sweep_run(st);
				st->next_sweep_ns = vg_clock_ns() + st->sweep_every_ns;
			} else if (jb->kind == JOB_DEP_OPEN) {
				struct recover_ctx c = { 0 };
				rc = store_dep_load(st, jb->ctl->dep, true, &c);
				free(c.ops);
			} else {
				rc = store_dep_shred(st, jb->ctl->dep);
			}
			pthread_mutex_lock(&st->mu);
			jb->ctl->rc = rc;
			jb->ctl->done = true;
			pthread_cond_broadcast(&st->done_cv);
			pthread_mutex_unlock(&st->mu);
		}
		/* The retention sweeper, every sweep_interval_s, when nothing is pending or in flight. */
		if (!st->n_pending && !st->n_inflight && !stop && vg_clock_ns() >= st->next_sweep_ns) {
			int rc = store_sweep_run(st);
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
int store_ctl_run(struct store *st, enum job_kind kind, uint64_t dep)
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

/* Set up the ring, or fall back to pwritev+fdatasync where io_uring is refused. Before the thread starts. */
void store_ring_init(struct store *st, size_t slots_len)
{
	int rc;

	/* The ring: room for a full group of writes plus one fdatasync per deployment. */
	rc = st->conf.no_io_uring ? -ENOSYS : io_uring_queue_init(st->n_slots + STORE_MAX_DEPLOYMENTS + 8, &st->ring, 0);
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
}
