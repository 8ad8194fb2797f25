/*
 * The whole face pipeline on the device for a batch of frames (gpu_cuda.h: gpu_cuda_faces_*):
 * frames in, faces out, descriptors left on the device for the matcher. The nets and executors are
 * gpu_cuda_exec.cuh's, the steps between them gpu_cuda_faces.cuh's; this file sequences a batch:
 *
 *   frames --(copy, host frames only)--> detector inputs (whole frame, tiles) --SSD x ceil(n/ssd)-->
 *   per-frame NMS --(face counts to the host: one small copy)--> landmark crops --LM--> landmarks,
 *   alignment --> descriptor crops --REC--> quality; descriptors gathered for the matcher.
 *
 * Every buffer is made at create; a batch allocates nothing. Host scratch that holds faces is
 * gpu_bio_alloc()ed (MADV_DONTDUMP, zeroed when freed) and zeroed when the batch retires.
 */
#include <new>

#include "gpu_cuda_engine.cuh"
#include "gpu_cuda_exec.cuh"
#include "gpu_cuda_faces.cuh"

extern "C" {
#include "gpu_cuda.h"
}

struct gpu_cuda_faces {
	struct gpu_cuda_faces_conf conf;
	struct gpu_cuda_faces_stats st;
	virtual ~gpu_cuda_faces() {}
	virtual int run(const struct gpu_cuda_frame *frames, int nframes, unsigned flags, struct gpu_face *faces,
			int max, int *counts) = 0;
	virtual const float *queries(const int *idx, int n) = 0;
	virtual int descriptors(const int *idx, int n, float *out) = 0;
	virtual int crop(int frame, int x, int y, int w, int h, double step, uint8_t *rgb) = 0;
	virtual int retire() = 0;
	virtual void refresh_stats() = 0;
	virtual uint64_t residue() = 0;
};

/* Bytes of frame F's planes: [0] rows x width of plane 0, ... as the staging copy lays them out. */
static void vgc_plane_dims(const struct gpu_cuda_frame *f, int p, size_t *width, size_t *rows)
{
	int cw = (f->width + 1) / 2, ch = (f->height + 1) / 2;

	*width = *rows = 0;
	if (f->format == GPU_CUDA_RGB24) {
		if (p == 0)
			*width = (size_t)f->width * 3, *rows = (size_t)f->height;
	} else if (p == 0) {
		*width = (size_t)f->width, *rows = (size_t)f->height;
	} else if (f->format == GPU_CUDA_I420) {
		*width = (size_t)cw, *rows = (size_t)ch;
	} else if (p == 1) {
		*width = (size_t)cw * 2, *rows = (size_t)ch;
	}
}

template <class E> struct vgc_faces final : gpu_cuda_faces {
	typedef decltype(E::x) X;
	E e;
	int max_inputs = 0, max_slots = 0;
	size_t stage_bytes = 0;   /* per frame, device executor only */
	/* executor memory */
	struct vgk_frame *d_frames = NULL;
	struct vgk_region *d_inputs = NULL, *d_lm = NULL, *d_rec = NULL;
	struct vgk_det *d_det = NULL;
	float *d_boxes = NULL, *d_scores = NULL, *d_desc = NULL, *d_q = NULL;
	int *d_order = NULL, *d_nfaces = NULL, *d_slot = NULL, *d_qidx = NULL;
	struct gpu_post_cand *d_cands = NULL;
	struct gpu_face *d_faces = NULL;
	double *d_rows = NULL;
	unsigned char *d_stage = NULL, *d_crop = NULL;
	/* host scratch (biometric where it holds faces) */
	struct vgk_frame *h_frames = NULL;
	struct vgk_region *h_inputs = NULL, *h_lm = NULL, *h_rec = NULL;
	struct vgk_det *h_det = NULL;
	int *h_nfaces = NULL, *h_slot = NULL, *h_crop_of = NULL, *h_qidx = NULL;
	struct gpu_face *h_faces = NULL;
	float *h_desc = NULL;
	/* what the last batch used, for retire() */
	int used_frames = 0, used_inputs = 0, used_crops = 0, used_out = 0, used_q = 0;
	size_t used_stage[GPU_CUDA_FACES_MAX_FRAMES];

	template <class T> T *dev(size_t n) { return (T *)e.x.bytes(n * sizeof(T)); }
	/* host scratch: every block host() made, for the destructor and residue() */
	struct {
		void *p;
		size_t len;
	} hmem[16];
	int nhmem = 0;

	template <class T> T *host(size_t n)
	{
		size_t len = n * sizeof(T);
		T *p = nhmem < (int)(sizeof(hmem) / sizeof(hmem[0])) ? (T *)gpu_bio_alloc(len ? len : 1) : NULL;

		if (p) {
			memset(p, 0, len);
			hmem[nhmem].p = p;
			hmem[nhmem++].len = len;
		}
		return p;
	}
	~vgc_faces()
	{
		for (int i = 0; i < nhmem; i++)
			gpu_bio_free(hmem[i].p);   /* zeroes it */
	}

	/* the detector inputs of a W x H frame: the whole frame, then the tiles (at most CAP) */
	int inputs_of(int w, int h, struct vgk_region *out, int frame, int cap) const
	{
		int ox[GPU_POST_TILES_MAX_SIDE], oy[GPU_POST_TILES_MAX_SIDE], nx, ny, n = 0;

		if (cap < 1)
			return -1;
		out[n++] = (struct vgk_region){frame, 0, 0, w, h, 1};
		if (!conf.tiled || w <= 512 || h <= 512)
			return n;
		nx = gpu_post_tile_origins(w, 512 - conf.overlap, ox, GPU_POST_TILES_MAX_SIDE);
		ny = gpu_post_tile_origins(h, 512 - conf.overlap, oy, GPU_POST_TILES_MAX_SIDE);
		for (int ty = 0; ty < ny; ty++)   /* gpu_faces_run_tiled's order */
			for (int tx = 0; tx < nx; tx++) {
				if (n >= cap)
					return -1;
				out[n++] = (struct vgk_region){frame, ox[tx], oy[ty], 512, 512, 1};
			}
		return n;
	}

	int build(const struct gpu_model *m)
	{
		struct vgk_region tmp[1 + GPU_POST_TILES_MAX_SIDE * GPU_POST_TILES_MAX_SIDE];
		int per_frame = inputs_of(conf.max_width, conf.max_height, tmp, 0, (int)(sizeof(tmp) / sizeof(tmp[0])));
		int rc = e.build(m, conf.ssd_batch, conf.crop_batch, conf.mode);

		if (rc)
			return rc;
		max_inputs = conf.max_frames * per_frame;
		max_slots = conf.max_frames * conf.max_faces;
		/* the pipeline's own buffers: zeroed by retire(), each by what the batch used */
		e.x.owner = VGC_NET_PIPE;
		e.x.building_nb = 1;
		if (e.x.device_memory()) {
			stage_bytes = (size_t)conf.max_width * conf.max_height * 3;
			d_stage = dev<unsigned char>(stage_bytes * conf.max_frames);
		}
		d_frames = dev<struct vgk_frame>(conf.max_frames);
		d_inputs = dev<struct vgk_region>(max_inputs);
		d_det = dev<struct vgk_det>(conf.max_frames);
		d_boxes = dev<float>((size_t)max_inputs * GPU_SSD_ANCHORS * 4);
		d_scores = dev<float>((size_t)max_inputs * GPU_SSD_ANCHORS);
		d_order = dev<int>((size_t)conf.max_frames * GPU_SSD_ANCHORS);
		d_cands = dev<struct gpu_post_cand>((size_t)conf.max_frames * GPU_POST_TILE_CANDS);
		d_faces = dev<struct gpu_face>(max_slots);
		d_nfaces = dev<int>(conf.max_frames);
		d_slot = dev<int>(max_slots);
		d_lm = dev<struct vgk_region>(max_slots);
		d_rec = dev<struct vgk_region>(max_slots);
		d_rows = dev<double>((size_t)max_slots * 2 * VGK_SHARP_ROWS);
		d_desc = dev<float>((size_t)max_slots * GPU_DESCRIPTOR_DIM);
		d_q = dev<float>((size_t)max_slots * GPU_DESCRIPTOR_DIM);
		d_qidx = dev<int>(max_slots);
		d_crop = dev<unsigned char>((size_t)GPU_CUDA_FACES_CROP_MAX * GPU_CUDA_FACES_CROP_MAX * 3);
		h_frames = host<struct vgk_frame>(conf.max_frames);
		h_inputs = host<struct vgk_region>(max_inputs);
		h_det = host<struct vgk_det>(conf.max_frames);
		h_nfaces = host<int>(conf.max_frames);
		h_slot = host<int>(max_slots);
		h_crop_of = host<int>(max_slots);
		h_qidx = host<int>(max_slots);
		h_lm = host<struct vgk_region>(max_slots);
		h_rec = host<struct vgk_region>(max_slots);
		h_faces = host<struct gpu_face>(max_slots);
		h_desc = host<float>((size_t)max_slots * GPU_DESCRIPTOR_DIM);
		e.x.owner = 0;
		if (e.x.failed())
			return e.x.failed();
		if (!h_frames || !h_inputs || !h_det || !h_nfaces || !h_slot || !h_crop_of || !h_qidx || !h_lm ||
		    !h_rec || !h_faces || !h_desc)
			return -ENOMEM;
		memset(used_stage, 0, sizeof(used_stage));
		refresh_stats();
		return 0;
	}

	/* Frame I in the executor's memory: as it is, or copied to its staging slot (host frames on a
	 * device executor). */
	int place_frame(int i, const struct gpu_cuda_frame *f, struct vgk_frame *out)
	{
		size_t off = 0;

		*out = (struct vgk_frame){.plane = {f->plane[0], f->plane[1], f->plane[2]},
					  .pitch = {f->pitch[0], f->pitch[1], f->pitch[2]},
					  .fmt = f->format, .w = f->width, .h = f->height};
		used_stage[i] = 0;
		if (f->on_device || !e.x.device_memory())
			return 0;
		for (int p = 0; p < 3; p++) {
			size_t width, rows;
			unsigned char *dst = d_stage + (size_t)i * stage_bytes + off;

			vgc_plane_dims(f, p, &width, &rows);
			if (!width)
				continue;
			if (off + width * rows > stage_bytes)
				return -EINVAL;
			if (e.x.upload2d(dst, width, f->plane[p], (size_t)f->pitch[p], width, rows))
				return -EIO;
			out->plane[p] = dst;
			out->pitch[p] = (int)width;
			off += width * rows;
		}
		used_stage[i] = off;
		return 0;
	}

	static int frame_ok(const struct gpu_cuda_frame *f, const struct gpu_cuda_faces_conf *c, bool device_memory)
	{
		if (f->width < 1 || f->height < 1 || f->width > c->max_width || f->height > c->max_height ||
		    f->format < GPU_CUDA_RGB24 || f->format > GPU_CUDA_NV12 || !f->plane[0] ||
		    (f->format != GPU_CUDA_RGB24 && !f->plane[1]) || (f->format == GPU_CUDA_I420 && !f->plane[2]) ||
		    (f->on_device && !device_memory))
			return 0;
		for (int p = 0; p < 3; p++) {
			size_t width, rows;

			vgc_plane_dims(f, p, &width, &rows);
			if (width && (size_t)f->pitch[p] < width)
				return 0;
		}
		return 1;
	}

	int run(const struct gpu_cuda_frame *frames, int nframes, unsigned flags, struct gpu_face *faces, int max,
		int *counts) override
	{
		X &x = e.x;
		int ninputs = 0, ncrops = 0, nout = 0, rc;

		if (nframes < 0 || nframes > conf.max_frames || (nframes && (!frames || !counts)) || max < 0 ||
		    (max && !faces))
			return -EINVAL;
		for (int i = 0; i < nframes; i++)
			if (!frame_ok(&frames[i], &conf, x.device_memory()))
				return -EINVAL;
		if (x.failed())
			return x.failed();
		retire();   /* a batch the caller did not retire is not left behind */
		used_frames = nframes;
		for (int i = 0; i < nframes; i++) {
			int n;

			if ((rc = place_frame(i, &frames[i], &h_frames[i])))
				return rc;
			n = inputs_of(frames[i].width, frames[i].height, h_inputs + ninputs, i, max_inputs - ninputs);
			if (n < 0)
				return -EINVAL;
			h_det[i] = (struct vgk_det){ninputs, n, frames[i].width, frames[i].height};
			ninputs += n;
		}
		used_inputs = ninputs;
		if (nframes == 0)
			return 0;
		for (int i = 0; i < nframes; i++) {   /* NVDEC's frames: after its post-processing */
			if (!frames[i].on_device)
				continue;
			if ((rc = x.wait_default_stream()))
				return rc;
			break;
		}
		x.upload(d_frames, h_frames, (size_t)nframes * sizeof(*h_frames));
		x.upload(d_inputs, h_inputs, (size_t)ninputs * sizeof(*h_inputs));
		x.upload(d_det, h_det, (size_t)nframes * sizeof(*h_det));

		/* 1. the detector over every input of the batch, SSD_BATCH at a time */
		for (int c0 = 0; c0 < ninputs; c0 += e.ssd_batch) {
			int nb = ninputs - c0 < e.ssd_batch ? ninputs - c0 : e.ssd_batch;

			x.each((size_t)nb * 512 * 512 * 3,
			       vgk_to_batch_regions{.frames = d_frames, .regions = d_inputs + c0, .out = e.s.in, .size = 512,
						    .center = 0});
			e.ssd_forward(nb);
			x.copy(d_boxes + (size_t)c0 * GPU_SSD_ANCHORS * 4, e.s.boxes,
			       (size_t)nb * GPU_SSD_ANCHORS * 4 * sizeof(float));
			x.copy(d_scores + (size_t)c0 * GPU_SSD_ANCHORS, e.s.scores, (size_t)nb * GPU_SSD_ANCHORS * sizeof(float));
			e.scrub(VGC_NET_SSD, nb);
		}
		/* 2. per frame: NMS (and the tiles' merge) */
		x.each((size_t)nframes,
		       vgk_detect_frame{.det = d_det, .inputs = d_inputs, .boxes = d_boxes, .scores = d_scores,
					.order = d_order, .cands = d_cands, .faces = d_faces, .nfaces = d_nfaces,
					.maxf = conf.max_faces, .overlap = conf.overlap});
		if ((rc = x.download(h_nfaces, d_nfaces, (size_t)nframes * sizeof(int))))
			return rc;
		for (int i = 0; i < nframes; i++)
			for (int k = 0; k < h_nfaces[i] && k < conf.max_faces; k++)
				h_slot[ncrops++] = i * conf.max_faces + k;
		used_crops = ncrops;
		x.upload(d_slot, h_slot, (size_t)ncrops * sizeof(int));

		/* 3. every face of the batch: landmarks, alignment, descriptor, quality, CROP_BATCH at a time */
		for (int c0 = 0; c0 < ncrops; c0 += e.crop_batch) {
			int nb = ncrops - c0 < e.crop_batch ? ncrops - c0 : e.crop_batch;

			x.each((size_t)nb, vgk_lm_region{.faces = d_faces, .slot = d_slot + c0, .frames = d_frames,
							 .out = d_lm + c0, .maxf = conf.max_faces});
			x.each((size_t)nb * 112 * 112 * 3,
			       vgk_to_batch_regions{.frames = d_frames, .regions = d_lm + c0, .out = e.l.in, .size = 112,
						    .center = 1});
			e.lm_forward(nb);
			x.each((size_t)nb, vgk_landmarks{.out136 = e.l.out, .lm = d_lm + c0, .faces = d_faces,
							 .slot = d_slot + c0, .frames = d_frames, .rec = d_rec + c0});
			e.scrub(VGC_NET_LM, nb);
			x.each((size_t)nb * GPU_POST_CROP * GPU_POST_CROP * 3,
			       vgk_to_batch_regions{.frames = d_frames, .regions = d_rec + c0, .out = e.r.in,
						    .size = GPU_POST_CROP, .center = 1});
			e.rec_forward(nb);
			x.each((size_t)nb * VGK_SHARP_ROWS,
			       vgk_sharp_rows{.in150 = e.r.in, .rec = d_rec + c0, .rows = d_rows + (size_t)c0 * 2 * VGK_SHARP_ROWS});
			x.each((size_t)nb, vgk_quality{.faces = d_faces, .slot = d_slot + c0, .rec = d_rec + c0,
						       .rows = d_rows + (size_t)c0 * 2 * VGK_SHARP_ROWS});
			x.copy(d_desc + (size_t)c0 * GPU_DESCRIPTOR_DIM, e.r.out, (size_t)nb * GPU_DESCRIPTOR_DIM * sizeof(float));
			e.scrub(VGC_NET_REC, nb);
		}
		if (x.failed())
			return x.failed();

		/* 4. the faces to the host, in gpu_faces_run's order, less those the CPU drops */
		if (ncrops &&
		    ((rc = x.download(h_lm, d_lm, (size_t)ncrops * sizeof(*h_lm))) ||
		     (rc = x.download(h_rec, d_rec, (size_t)ncrops * sizeof(*h_rec))) ||
		     (rc = x.download(h_faces, d_faces, (size_t)(h_slot[ncrops - 1] + 1) * sizeof(*h_faces))) ||
		     ((flags & GPU_CUDA_FACES_DESCRIPTORS) &&
		      (rc = x.download(h_desc, d_desc, (size_t)ncrops * GPU_DESCRIPTOR_DIM * sizeof(float))))))
			return rc;
		for (int i = 0; i < nframes; i++)
			counts[i] = 0;
		for (int j = 0; j < ncrops && nout < max; j++) {
			struct gpu_face *f = &faces[nout];

			if (!h_lm[j].ok || !h_rec[j].ok)
				continue;
			*f = h_faces[h_slot[j]];
			/* the built-in net's 128 values; the rest of the GPU_DESCRIPTOR_MAX array stays zero */
			memset(f->descriptor, 0, sizeof(f->descriptor));
			if (flags & GPU_CUDA_FACES_DESCRIPTORS)
				memcpy(f->descriptor, h_desc + (size_t)j * GPU_DESCRIPTOR_DIM, GPU_DESCRIPTOR_DIM * sizeof(float));
			counts[h_lm[j].frame]++;
			h_crop_of[nout++] = j;
		}
		used_out = nout;
		st.batches++;
		st.frames += (uint64_t)nframes;
		st.detector_inputs += (uint64_t)ninputs;
		st.faces += (uint64_t)nout;
		return nout;
	}

	const float *queries(const int *idx, int n) override
	{
		if (n < 1 || n > used_out || !idx)
			return NULL;
		for (int i = 0; i < n; i++) {
			if (idx[i] < 0 || idx[i] >= used_out)
				return NULL;
			h_qidx[i] = h_crop_of[idx[i]];
		}
		e.x.upload(d_qidx, h_qidx, (size_t)n * sizeof(int));
		e.x.each((size_t)n * GPU_DESCRIPTOR_DIM,
			 vgk_gather{.src = d_desc, .idx = d_qidx, .out = d_q, .d = GPU_DESCRIPTOR_DIM});
		used_q = n > used_q ? n : used_q;
		/* the matcher reads them on its own stream: they must be there when this returns */
		return e.x.sync() ? NULL : d_q;
	}

	int descriptors(const int *idx, int n, float *out) override
	{
		const float *q = out ? queries(idx, n) : NULL;

		return q ? e.x.download(out, q, (size_t)n * GPU_DESCRIPTOR_DIM * sizeof(float)) : -EINVAL;
	}

	int crop(int frame, int x0, int y0, int w, int h, double step, uint8_t *rgb) override
	{
		size_t n = (size_t)w * h * 3;
		int rc;

		if (frame < 0 || frame >= used_frames || w < 1 || h < 1 || w > GPU_CUDA_FACES_CROP_MAX ||
		    h > GPU_CUDA_FACES_CROP_MAX || !(step >= 1.0) || x0 < 0 || y0 < 0 || !rgb)
			return -EINVAL;
		const struct vgk_frame &f = h_frames[frame];

		if (x0 + (int)((w - 1) * step) >= f.w || y0 + (int)((h - 1) * step) >= f.h)
			return -EINVAL;
		e.x.each(n, vgk_crop_rgb{.f = f, .out = d_crop, .x0 = x0, .y0 = y0, .w = w, .step = step});
		rc = e.x.download(rgb, d_crop, n);
		e.x.zero(d_crop, n);
		return rc;
	}

	int retire() override
	{
		X &x = e.x;
		size_t slots = (size_t)used_frames * conf.max_faces;

		for (int i = 0; i < used_frames; i++)
			if (used_stage[i])
				x.zero(d_stage + (size_t)i * stage_bytes, used_stage[i]);
		x.zero(d_boxes, (size_t)used_inputs * GPU_SSD_ANCHORS * 4 * sizeof(float));
		x.zero(d_scores, (size_t)used_inputs * GPU_SSD_ANCHORS * sizeof(float));
		x.zero(d_cands, (size_t)used_frames * GPU_POST_TILE_CANDS * sizeof(*d_cands));
		x.zero(d_order, (size_t)used_frames * GPU_SSD_ANCHORS * sizeof(int));
		x.zero(d_faces, slots * sizeof(*d_faces));
		x.zero(d_lm, (size_t)used_crops * sizeof(*d_lm));
		x.zero(d_rec, (size_t)used_crops * sizeof(*d_rec));
		x.zero(d_rows, (size_t)used_crops * 2 * VGK_SHARP_ROWS * sizeof(double));
		x.zero(d_desc, (size_t)used_crops * GPU_DESCRIPTOR_DIM * sizeof(float));
		x.zero(d_q, (size_t)used_q * GPU_DESCRIPTOR_DIM * sizeof(float));
		x.zero(d_frames, (size_t)used_frames * sizeof(*d_frames));
		x.zero(d_inputs, (size_t)used_inputs * sizeof(*d_inputs));
		x.zero(d_det, (size_t)used_frames * sizeof(*d_det));
		x.zero(d_nfaces, (size_t)used_frames * sizeof(int));
		x.zero(d_slot, (size_t)used_crops * sizeof(int));
		x.zero(d_qidx, (size_t)used_q * sizeof(int));
		memset(h_faces, 0, slots * sizeof(*h_faces));
		memset(h_desc, 0, (size_t)used_crops * GPU_DESCRIPTOR_DIM * sizeof(float));
		memset(h_lm, 0, (size_t)used_crops * sizeof(*h_lm));
		memset(h_rec, 0, (size_t)used_crops * sizeof(*h_rec));
		memset(h_frames, 0, (size_t)used_frames * sizeof(*h_frames));
		memset(h_inputs, 0, (size_t)used_inputs * sizeof(*h_inputs));
		memset(h_det, 0, (size_t)used_frames * sizeof(*h_det));
		memset(h_nfaces, 0, (size_t)used_frames * sizeof(int));
		memset(h_slot, 0, (size_t)used_crops * sizeof(int));
		memset(h_crop_of, 0, (size_t)used_out * sizeof(int));
		memset(h_qidx, 0, (size_t)used_q * sizeof(int));
		used_frames = used_inputs = used_crops = used_out = used_q = 0;
		return x.sync();
	}

	uint64_t residue() override
	{
		uint64_t n = e.residue();

		/* the host scratch: where the frames and faces are, the faces, their descriptors */
		for (int i = 0; i < nhmem; i++)
			for (size_t b = 0; b < hmem[i].len; b++)
				n += ((const unsigned char *)hmem[i].p)[b] != 0;
		return n;
	}

	void refresh_stats() override
	{
		st.device_bytes = e.bytes();
		st.cudnn_fallbacks = e.fallbacks();
		st.graph_launches = e.graph_launches();
		st.graph_failures = e.graph_failures();
	}
};

/* The executor X of a pipeline: a GPU's (its own stream; the fp16 mode keeps the detector and the
 * landmarks in fp32 cuDNN) or nothing to do for the host emulation. */
template <class T> static int vgc_x_init(vgc_host<T> &, const struct gpu_cuda_faces_conf *) { return 0; }
template <class T> static int vgc_x_init(vgc_dev<T> &x, const struct gpu_cuda_faces_conf *c)
{
	int mode = c->mode == GPU_CUDA_FP16 ? GPU_CUDA_FP32 : c->mode;

	/* the pinned stage serves the nets API only: a page is enough here */
	return x.init(c->device, mode, 1024, c->graphs) ? x.failed() : 0;
}

template <class E> static int vgc_faces_make(gpu_cuda_faces **out, const struct gpu_model *m,
					     const struct gpu_cuda_faces_conf *c)
{
	vgc_faces<E> *p = new (std::nothrow) vgc_faces<E>();
	int rc;

	if (!p)
		return -ENOMEM;
	p->conf = *c;
	memset(&p->st, 0, sizeof(p->st));
	rc = vgc_x_init(p->e.x, c);
	if (rc == 0)
		rc = p->build(m);
	if (rc) {
		delete p;
		return rc;
	}
	*out = p;
	return 0;
}

extern "C" int gpu_cuda_faces_create(struct gpu_cuda_faces **out, const struct gpu_model *model,
				     const struct gpu_cuda_faces_conf *conf, char *err, size_t errlen)
{
	struct gpu_cuda_faces_conf c;
	gpu_cuda_faces *p = NULL;
	int rc;

	if (!out || !model || !conf) {
		snprintf(err, errlen, "cuda faces: bad arguments");
		return -EINVAL;
	}
	if (!gpu_model_rec(model)) {   /* an ONNX model folder's descriptor net: CPU only for now */
		snprintf(err, errlen, "cuda faces: the model's descriptor net is an ONNX import, which runs on the CPU only");
		return -ENOTSUP;
	}
	c = *conf;
	if (c.ssd_batch == 0)
		c.ssd_batch = c.device < 0 ? 2 : 8;
	if (c.crop_batch == 0)
		c.crop_batch = c.device < 0 ? 8 : 64;
	if (c.max_frames < 1 || c.max_frames > GPU_CUDA_FACES_MAX_FRAMES || c.max_width < 16 || c.max_height < 16 ||
	    c.max_width > 16384 || c.max_height > 16384 || c.max_faces < 1 || c.max_faces > GPU_MAX_FACES ||
	    c.overlap < 0 || c.overlap > 448 || c.ssd_batch < 1 || c.ssd_batch > GPU_CUDA_NETS_MAX_BATCH ||
	    c.crop_batch < 1 || c.crop_batch > GPU_CUDA_NETS_MAX_BATCH ||
	    (c.mode != GPU_CUDA_EXACT && c.mode != GPU_CUDA_FP32 && c.mode != GPU_CUDA_FP16)) {
		snprintf(err, errlen, "cuda faces: bad configuration");
		return -EINVAL;
	}
	if (c.device >= 0) {
		int count = gpu_cuda_device_count();

		if (count <= 0 || c.device >= count) {
			snprintf(err, errlen, "cuda faces: no CUDA device %d (%d found)", c.device, count > 0 ? count : 0);
			return -ENODEV;
		}
		rc = c.mode == GPU_CUDA_FP16 ? vgc_faces_make<vgc_engine<vgc_dev<float>, vgc_dev<__half>>>(&p, model, &c)
					     : vgc_faces_make<vgc_engine<vgc_dev<float>>>(&p, model, &c);
	} else {
		rc = c.mode == GPU_CUDA_FP16 ? vgc_faces_make<vgc_engine<vgc_host<float>, vgc_host<__half>>>(&p, model, &c)
					     : vgc_faces_make<vgc_engine<vgc_host<float>>>(&p, model, &c);
	}
	if (rc) {
		snprintf(err, errlen, "cuda faces: %s", rc == -ENOMEM ? "out of memory" : gpu_cuda_last_error());
		return rc;
	}
	*out = p;
	return 0;
}

extern "C" void gpu_cuda_faces_destroy(struct gpu_cuda_faces **p)
{
	if (!p || !*p)
		return;
	(*p)->retire();
	delete *p;
	*p = NULL;
}

extern "C" int gpu_cuda_faces_run(struct gpu_cuda_faces *p, const struct gpu_cuda_frame *frames, int nframes,
				  unsigned flags, struct gpu_face *faces, int max, int *counts)
{
	int rc;

	if (!p)
		return -EINVAL;
	rc = p->run(frames, nframes, flags, faces, max, counts);
	p->refresh_stats();
	return rc;
}

extern "C" const float *gpu_cuda_faces_queries(struct gpu_cuda_faces *p, const int *idx, int n)
{
	return p ? p->queries(idx, n) : NULL;
}

extern "C" int gpu_cuda_faces_descriptors(struct gpu_cuda_faces *p, const int *idx, int n, float *out)
{
	return p ? p->descriptors(idx, n, out) : -EINVAL;
}

extern "C" int gpu_cuda_faces_crop(struct gpu_cuda_faces *p, int frame, int x, int y, int w, int h, double step,
				   uint8_t *rgb)
{
	return p ? p->crop(frame, x, y, w, h, step, rgb) : -EINVAL;
}

extern "C" uint64_t gpu_cuda_faces_residue(struct gpu_cuda_faces *p)
{
	return p ? p->residue() : UINT64_MAX;
}

extern "C" int gpu_cuda_faces_retire(struct gpu_cuda_faces *p)
{
	return p ? p->retire() : -EINVAL;
}

extern "C" void gpu_cuda_faces_stats_get(const struct gpu_cuda_faces *p, struct gpu_cuda_faces_stats *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (p)
		*out = p->st;
}

extern "C" int gpu_cuda_frame_scrub(int device, const struct gpu_cuda_frame *f)
{
	cudaError_t e;

	if (!f || !f->on_device || device < 0)
		return -EINVAL;
	if ((e = cudaSetDevice(device)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaSetDevice");
	for (int p = 0; p < 3; p++) {
		size_t width, rows;

		vgc_plane_dims(f, p, &width, &rows);
		if (width && f->plane[p] &&
		    (e = cudaMemset2D((void *)f->plane[p], (size_t)f->pitch[p], 0, width, rows)) != cudaSuccess)
			return gpu_cuda_error(e, "cudaMemset2D frame");
	}
	/* done before the caller hands the surface back: NVDEC's unmap is not ordered after stream 0 */
	if ((e = cudaStreamSynchronize(0)) != cudaSuccess)
		return gpu_cuda_error(e, "cudaStreamSynchronize frame");
	return 0;
}
