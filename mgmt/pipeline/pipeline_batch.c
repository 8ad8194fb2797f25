/*
 * The analysis thread: frames gathered from every camera into a batch (up to the batch size or
 * its deadline), through the face nets (gpu/ or gpu/cuda/), gated, matched in one call, resolved
 * frame by frame, then retired so that nothing of a non-match outlives its batch (invariant 1).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline_int.h"

/* The batch's frames through the face nets: frame i's faces at faces[first], count of them. */
static int batch_nets(struct pipeline *p, unsigned n)
{
	int total = 0;

#ifdef HAVE_VIGIL_GPU_CUDA
	if (p->gpu) {
		struct gpu_cuda_frame fr[BATCH_MAX] = { 0 };
		int counts[BATCH_MAX];

		for (unsigned i = 0; i < n; i++) {
			const struct queued_frame *qf = p->batch[i].qf;

			fr[i] = (struct gpu_cuda_frame){ .plane = { qf->plane[0], qf->plane[1], qf->plane[2] },
							 .pitch = { qf->pitch[0], qf->pitch[1], qf->pitch[2] },
							 .format = qf->fmt, .width = qf->w, .height = qf->h,
							 .on_device = qf->device != NULL };
		}
		/* descriptors come to the host only for a matcher that is not on the GPU */
		total = gpu_cuda_faces_run(p->gpu, fr, (int)n, p->match_on_device ? 0 : GPU_CUDA_FACES_DESCRIPTORS,
					   p->faces, (int)(p->batch_max * MAX_FACES), counts);
		if (total < 0) {
			p->nets_errors++;
			return total;
		}
		for (unsigned i = 0, off = 0; i < n; off += (unsigned)counts[i], i++) {
			p->batch[i].first = (int)off;
			p->batch[i].count = counts[i];
		}
		return total;
	}
#endif
	for (unsigned i = 0; i < n; i++) {
		const struct queued_frame *qf = p->batch[i].qf;
		struct gpu_face *f = p->faces + total;
		int k = p->conf.tiled ? gpu_faces_run_tiled(p->model, qf->plane[0], (uint32_t)qf->w, (uint32_t)qf->h, 192, f,
							    MAX_FACES)
				      : gpu_faces_run(p->model, qf->plane[0], (uint32_t)qf->w, (uint32_t)qf->h, f, MAX_FACES);

		if (k < 0) {
			p->nets_errors++;
			k = 0;
		}
		p->batch[i].first = total;
		p->batch[i].count = k;
		total += k;
	}
	return total;
}

/* Match the NQ faces p->keep[] names, into p->res: on the GPU where the descriptors are, else on
 * the host. Returns whether there are answers. */
static bool batch_match(struct pipeline *p, int nq)
{
	if (!p->ctx || nq <= 0)
		return false;
#ifdef HAVE_VIGIL_GPU_CUDA
	if (p->gpu && p->match_on_device) {
		const float *q = gpu_cuda_faces_queries(p->gpu, p->keep, nq);

		if (q && match_query_device(p->ctx, q, (unsigned)nq, 1, p->res) == nq)
			/* track fusion keeps descriptors on the host, in the tracks' templates */
			return !p->templates_pool || gpu_cuda_faces_descriptors(p->gpu, p->keep, nq, p->q) == 0;
		/* the GPU's copy of the watchlist is missing or failed: the host matches (counted) */
		p->match_host_fallbacks += (uint64_t)nq;
		if (gpu_cuda_faces_descriptors(p->gpu, p->keep, nq, p->q) < 0)
			return false;
		return match_query(p->ctx, p->q, (unsigned)nq, 1, p->res) == nq;
	}
#endif
	for (int j = 0; j < nq; j++)
		memcpy(p->q + (size_t)j * p->d, p->faces[p->keep[j]].descriptor, p->d * sizeof(float));
	return match_query(p->ctx, p->q, (unsigned)nq, 1, p->res) == nq;
}

/*
 * One batch of N frames (any cameras): the nets over all of them, the quality gate, one match of
 * every face that passed, then each frame's tracks and alerts in order, as if the frames had come
 * one at a time. Then the batch retires: nothing of these faces outlives it (invariant 1): faces
 * and host descriptors zeroed here, the GPU's buffers by gpu_cuda_faces_retire.
 */
static void analyse_batch(struct pipeline *p, unsigned n)
{
	uint64_t t0 = vg_clock_ns();
	int total = batch_nets(p, n), nq = 0;
	uint64_t nets = vg_clock_ns() - t0;
	bool matched;

	p->nets_ns += nets;
	vg_counter_add(p->row, ANALYSIS_nets_us, nets / 1000);
	vg_counter_add(p->row, ANALYSIS_batches, 1);
	if (total < 0) { /* the GPU failed this batch: its frames count as analysed, with no faces */
		for (unsigned i = 0; i < n; i++)
			p->batch[i].first = p->batch[i].count = 0;
		total = 0;
	}
	for (int i = 0; i < total; i++) {
		if (pipeline_face_passes_gate(&p->conf, &p->faces[i].quality))
			p->keep[nq++] = i;
	}
	matched = batch_match(p, nq);
	for (unsigned i = 0, k = 0; i < n; i++)
		k = (unsigned)pipeline_frame_results(p, i, (int)k, nq, matched);
	/* The results hold ids and distances, not biometrics; the faces and descriptors do. */
	vg_scrub(p->q, (size_t)nq * p->d * sizeof(float));
	gpu_faces_retire(p->faces, total);
#ifdef HAVE_VIGIL_GPU_CUDA
	if (p->gpu)
		gpu_cuda_faces_retire(p->gpu);
#endif
}

/* The progress line, once a second on stderr (analysis thread). */
static void progress(struct pipeline *p)
{
	uint64_t now = vg_clock_ns(), frames = 0;

	if (!p->started_ns)
		p->started_ns = now;
	if (now - p->last_progress_ns < VG_NS_PER_SEC)
		return;
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		frames += p->cams[i].n.frames_analysed;
	double secs = (double)(now - p->started_ns) / 1e9;
	fprintf(stderr, "\rvigild run: %" PRIu64 " frames analysed, %" PRIu64 " faces (%.0f faces/s), %u alerts ", frames,
		p->faces_scanned, secs > 0 ? (double)p->faces_scanned / secs : 0.0, p->n_alerts);
	p->last_progress_ns = now;
}

/* The next queued frame, taking the cameras in turn. Visits at most n_cams queues. */
static struct queued_frame *next_frame(struct pipeline *p, unsigned *cam)
{
	unsigned n = atomic_load_explicit(&p->n_cams, memory_order_acquire);
	void *obj;

	for (unsigned i = 0; i < n; i++) {
		unsigned k = (p->next_cam + i) % n;

		if (rte_ring_sc_dequeue(p->cams[k].queue, &obj) == 0) {
			p->next_cam = k + 1;
			*cam = k;
			return obj;
		}
	}
	return NULL;
}

/*
 * Gather a batch: wait for a first frame, then take more from every camera in turn until the
 * batch is full, its deadline passes, or every camera's frames are all in it (a camera has
 * queue_depth buffers: in a lossless run its decoder waits for this batch to free one, so waiting
 * longer would only waste the deadline). Returns how many frames; *DONE once the stop's wake-up
 * came (every frame queued before it is in this batch or an earlier one).
 */
static unsigned gather_batch(struct pipeline *p, bool *done)
{
	unsigned n = 0, per_cam[DP_MAX_CAMERAS], full = 0;
	struct timespec deadline;

	*done = false;
	while (n == 0) {
		struct queued_frame *qf;
		unsigned cam;

		while (sem_wait(&p->ready) != 0)
			; /* EINTR */
		qf = next_frame(p, &cam);
		if (!qf) { /* the stop's own wake-up, with every queue empty */
			*done = atomic_load_explicit(&p->stop, memory_order_acquire);
			if (*done)
				return 0;
			continue;
		}
		memset(per_cam, 0, sizeof(per_cam));
		p->batch[n++] = (struct batch_frame){ .qf = qf, .cam = cam };
		per_cam[cam] = 1;
		full += p->conf.queue_depth == 1;
	}
	{
		uint64_t ns = vg_clock_realtime_ns() + p->batch_deadline_ns;

		deadline.tv_sec = (time_t)(ns / VG_NS_PER_SEC);
		deadline.tv_nsec = (long)(ns % VG_NS_PER_SEC);
	}
	while (n < p->batch_max && full < atomic_load_explicit(&p->n_cams, memory_order_acquire)) {
		struct queued_frame *qf;
		unsigned cam;

		if (sem_trywait(&p->ready) != 0) {
			if (sem_timedwait(&p->ready, &deadline) != 0) {
				if (errno == EINTR)
					continue;
				p->batch_deadlines++;
				break;
			}
		}
		qf = next_frame(p, &cam);
		if (!qf) { /* the stop: nothing more will come */
			*done = true;
			break;
		}
		p->batch[n++] = (struct batch_frame){ .qf = qf, .cam = cam };
		full += ++per_cam[cam] == p->conf.queue_depth;
	}
	atomic_fetch_sub_explicit(&p->queued, n, memory_order_relaxed);
	return n;
}

/* Frame QF's analysis is over: its pixels are zeroed (the pool's, or the device frame's before the
 * decoder reuses it) and its buffer goes back to its camera. */
static void retire_frame(struct pipeline *p, struct camera *c, struct queued_frame *qf)
{
#ifdef HAVE_VIGIL_GPU_CUDA
	if (qf->device) {
		struct gpu_cuda_frame f = { .plane = { qf->plane[0], qf->plane[1] }, .pitch = { qf->pitch[0], qf->pitch[1] },
					    .format = FRAME_NV12, .width = qf->w, .height = qf->h, .on_device = 1 };

		gpu_cuda_frame_scrub(p->gpu_device, &f);
		p->frames_on_device++;
	}
#endif
	(void)p;
	av_frame_free(&qf->device);
	vg_pool_put(qf->pool, qf); /* zeroes the frame: it has retired (invariant 1) */
	sem_post(&c->slots);
}

/* The analysis thread: a batch at a time, every camera in turn, until stopped and drained. */
void *pipeline_analysis_main(void *arg)
{
	struct pipeline *p = arg;
	bool done = false;

	while (!done) {
		unsigned n = gather_batch(p, &done);
		uint64_t t0 = vg_clock_ns(), t1;

		if (n == 0)
			continue;
		p->batches++;
		p->batched_frames += n;
		p->batch_largest = n > p->batch_largest ? n : p->batch_largest;
		analyse_batch(p, n);
		t1 = vg_clock_ns();
		p->analysis_ns += t1 - t0;
		for (unsigned i = 0; i < n; i++) {
			struct queued_frame *qf = p->batch[i].qf;
			uint64_t us = (t1 - qf->queued_ns) / 1000;

			p->latency_us[p->n_latency++ % LATENCY_SAMPLES] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
			retire_frame(p, &p->cams[p->batch[i].cam], qf);
			p->batch[i].qf = NULL;
		}
		if (p->conf.progress)
			progress(p);
		/* A run holds the store, so reviews made meanwhile reach it from here (vigil_outcome.h). */
		if (p->store && t1 - p->outcomes_ns >= OUTCOMES_EVERY_NS) {
			pipeline_outcomes_apply(p->db, p->store);
			p->outcomes_ns = t1;
		}
	}
	return NULL;
}
