/*
 * Intake (each camera's decode thread): frames sampled at the camera's analysis rate on its own
 * RTP clock, copied into the camera's biometric pool (or held on the device), and queued for the
 * analysis thread; when a camera's queue is full its newest frame is dropped and counted.
 */
#include <errno.h>
#include <string.h>

#include "pipeline_int.h"

bool pipeline_slot_take(sem_t *slots, bool lossless, uint64_t *wait_ns)
{
	if (sem_trywait(slots) == 0)
		return true;
	if (!lossless)
		return false;
	uint64_t t0 = vg_clock_ns();
	while (sem_wait(slots) != 0)
		; /* EINTR */
	*wait_ns += vg_clock_ns() - t0;
	return true;
}

bool pipeline_sample_due(struct pipeline_sampler *s, uint32_t rtp_ts, unsigned fps)
{
	if (!s->have_first) {
		s->have_first = true;
		s->in_pts = 0;
		s->last_analysed = INT64_MIN / 2;
	} else {
		s->in_pts += (int32_t)(rtp_ts - s->last_ts); /* RTP time wraps: the signed difference unwraps it */
	}
	s->last_ts = rtp_ts;
	if (s->in_pts - s->last_analysed < (int64_t)(90000 / fps))
		return false;
	s->last_analysed = s->in_pts;
	return true;
}

/*
 * C's frame pool pinned for the GPU's copies (PIN), or no longer (before it is freed): frames go
 * to the device by DMA, asynchronously. Best effort: unpinned, the copies are only slower.
 */
void pipeline_pool_pin(struct pipeline *p, struct camera *c, bool pin)
{
#ifdef HAVE_VIGIL_GPU_CUDA
	size_t len;
	void *base = c->pool ? (void *)vg_pool_base(c->pool, &len) : NULL;

	if (!p->gpu || p->gpu_device < 0 || !base)
		return;
	if (!pin && c->pinned)
		gpu_cuda_host_unregister(base);
	c->pinned = pin && gpu_cuda_host_register(base, len) == 0;
#else
	(void)p, (void)c, (void)pin;
#endif
}

/*
 * A new frame size or format for C: every buffer must be back before its pool is replaced (the
 * analysis may still hold one), so take all the slots first; a live run that cannot do so at once
 * drops this frame and tries again with the next. Rare: a camera that was reconfigured.
 */
static int camera_reshape(struct pipeline *p, struct camera *c, const struct dp_frame *f)
{
	unsigned depth = p->conf.queue_depth, held = 0;
	size_t bytes = FRAME_HDR + (size_t)f->width * (size_t)f->height * 3;
	int rc = 0;

	for (; held < depth; held++)
		if (!pipeline_slot_take(&c->slots, p->conf.lossless, &c->wait_ns))
			break;
	if (held < depth) {
		rc = -EBUSY;
		goto out_release;
	}
	sws_freeContext(c->sws);
	c->sws = NULL; /* made by fill_frame for the formats that need it */
	if (bytes > c->pool_frame_bytes) {
		pipeline_pool_pin(p, c, false);
		vg_pool_destroy(&c->pool);
		c->pool_frame_bytes = 0;
		if (vg_pool_create(&c->pool, "frame", bytes, depth, VG_POOL_BIOMETRIC) == 0)
			c->pool_frame_bytes = bytes;
		pipeline_pool_pin(p, c, true);
	}
	if (!c->pool) {
		rc = -ENOMEM;
		c->in_w = 0; /* try again with the next frame */
		goto out_release;
	}
	c->in_w = f->width;
	c->in_h = f->height;
	c->in_fmt = f->pix_fmt;
out_release:
	while (held--)
		sem_post(&c->slots);
	return rc;
}

/* Copy plane rows: ROWS of WIDTH bytes from SRC (pitch SP) to DST, packed. Returns the bytes. */
static size_t copy_plane(uint8_t *dst, const uint8_t *src, int sp, int width, int rows)
{
	for (int r = 0; r < rows; r++)
		memcpy(dst + (size_t)r * width, src + (size_t)r * sp, (size_t)width);
	return (size_t)width * rows;
}

/*
 * Frame F's pixels into QF for the nets: a camera's limited-range 4:2:0 frame as the decoder's
 * planes (the GPU reads them; half the bytes of RGB) or as RGB by the GPU's own formula (the CPU
 * nets: both backends see the same pixels); NVDEC's frame held where it is, on the GPU; anything
 * else (full-range JPEG, 4:2:2, ...) as RGB through libswscale. Returns 0, or -ENOMEM.
 */
static int fill_frame(struct pipeline *p, struct camera *c, const struct dp_frame *f, struct queued_frame *qf)
{
	const AVFrame *av = f->avframe;
	uint8_t *px = (uint8_t *)qf + FRAME_HDR;
	int w = qf->w, h = qf->h, cw = (w + 1) / 2, ch = (h + 1) / 2;
	bool yuv = av->color_range != AVCOL_RANGE_JPEG && (f->pix_fmt == AV_PIX_FMT_YUV420P || f->pix_fmt == AV_PIX_FMT_NV12);
	bool nv12 = f->pix_fmt == AV_PIX_FMT_NV12;

	if (f->on_device) { /* pipeline_takes_device_frames(): the planes stay on the GPU */
		qf->device = av_frame_clone(av);
		if (!qf->device)
			return -ENOMEM;
		qf->fmt = FRAME_NV12;
		qf->plane[0] = av->data[0] + (size_t)f->crop_top * av->linesize[0] + f->crop_left;
		qf->plane[1] = av->data[1] + (size_t)(f->crop_top / 2) * av->linesize[1] + (f->crop_left & ~1);
		qf->pitch[0] = av->linesize[0];
		qf->pitch[1] = av->linesize[1];
		return 0;
	}
	if (yuv && p->gpu) {
		size_t off = copy_plane(px, av->data[0], av->linesize[0], w, h);

		qf->fmt = nv12 ? FRAME_NV12 : FRAME_I420;
		qf->plane[0] = px;
		qf->pitch[0] = w;
		qf->plane[1] = px + off;
		qf->pitch[1] = nv12 ? 2 * cw : cw;
		off += copy_plane(px + off, av->data[1], av->linesize[1], qf->pitch[1], ch);
		if (!nv12) {
			qf->plane[2] = px + off;
			qf->pitch[2] = cw;
			copy_plane(px + off, av->data[2], av->linesize[2], cw, ch);
		}
		return 0;
	}
	qf->fmt = FRAME_RGB24;
	qf->plane[0] = px;
	qf->pitch[0] = w * 3;
	if (yuv)
		return gpu_yuv420_to_rgb(av->data[0], av->linesize[0], av->data[1], nv12 ? NULL : av->data[2],
					 av->linesize[1], (uint32_t)w, (uint32_t)h, px) < 0 ? -ENOMEM : 0;
	if (!c->sws) /* once per stream (camera_reshape frees it) */
		c->sws = sws_getContext(w, h, f->pix_fmt, w, h, AV_PIX_FMT_RGB24, SWS_BILINEAR, NULL, NULL, NULL);
	if (!c->sws)
		return -ENOMEM;
	uint8_t *dst[4] = { px };
	int dst_stride[4] = { w * 3 };
	sws_scale(c->sws, (const uint8_t *const *)av->data, av->linesize, 0, h, dst, dst_stride);
	return 0;
}

/* A sampled frame of C is not analysed: counted, per camera and in /metrics. */
static void drop_frame(struct camera *c, struct vg_counter_row *row)
{
	c->frames_dropped++;
	vg_counter_add(row, ANALYSIS_frames_dropped, 1);
}

/* A frame of camera CAM from its decode thread: sample it, convert it and queue it, or drop it. */
void pipeline_frame(struct pipeline *p, unsigned cam, const struct dp_frame *f)
{
	const AVFrame *av = f->avframe;
	struct camera *c;

	if (cam >= DP_MAX_CAMERAS || f->corrupt || !av)
		return;
	c = &p->cams[cam];
	/* Sample at the camera's analysis rate, on the camera's own clock. */
	unsigned fps = p->conf.camera_fps[cam] ? p->conf.camera_fps[cam] : p->conf.analysis_fps;
	if (!pipeline_sample_due(&c->clock, f->ts, fps))
		return;
	c->frames_sampled++;
	struct vg_counter_row *row = vg_counter_block_row(p->counters, cam);
	vg_counter_add(row, ANALYSIS_frames_sampled, 1);
	if (p->gpu && ((unsigned)f->width > p->conf.gpu_max_width || (unsigned)f->height > p->conf.gpu_max_height)) {
		c->frames_oversize++; /* larger than the GPU's frames (--gpu-max-frame): never analysed */
		drop_frame(c, row);
		return;
	}
	if ((c->in_w != f->width || c->in_h != f->height || c->in_fmt != f->pix_fmt) && camera_reshape(p, c, f) < 0) {
		drop_frame(c, row);
		return;
	}
	/* Back-pressure: when the analysis is behind, the newest frame of this camera is dropped and
	 * counted; the decode thread never waits for it (a recorded run, lossless, does). */
	if (!pipeline_slot_take(&c->slots, p->conf.lossless, &c->wait_ns)) {
		drop_frame(c, row);
		return;
	}
	struct queued_frame *qf = vg_pool_get(c->pool);
	if (!qf) { /* cannot happen: a slot is a buffer */
		sem_post(&c->slots);
		drop_frame(c, row);
		return;
	}
	*qf = (struct queued_frame){ .pool = c->pool, .w = c->in_w, .h = c->in_h, .pts = c->clock.in_pts };
	if (fill_frame(p, c, f, qf) < 0) {
		vg_pool_put(qf->pool, qf);
		sem_post(&c->slots);
		drop_frame(c, row);
		return;
	}
	qf->queued_ns = vg_clock_ns();
	/* The ring holds queue_depth entries and a slot was free: the enqueue cannot fail. */
	rte_ring_sp_enqueue(c->queue, qf);
	atomic_fetch_add_explicit(&p->queued, 1, memory_order_relaxed);
	if (rte_ring_count(c->queue) > c->queue_max)
		c->queue_max = rte_ring_count(c->queue);
	unsigned n = atomic_load_explicit(&p->n_cams, memory_order_relaxed);
	while (cam >= n && !atomic_compare_exchange_weak_explicit(&p->n_cams, &n, cam + 1, memory_order_release,
								     memory_order_relaxed))
		;
	sem_post(&p->ready);
}

void pipeline_finish(struct pipeline *p)
{
	if (!p->analysis_running)
		return;
	atomic_store_explicit(&p->stop, true, memory_order_release);
	sem_post(&p->ready);
	pthread_join(p->analysis_thread, NULL);
	p->analysis_running = false;
}
