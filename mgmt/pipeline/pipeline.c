/* The analysis half of `vigild run` (vigild_pipeline.h). */
#include <errno.h>
#include <inttypes.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <rte_ring.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vg_config.h"
#include "gpu.h"
#ifdef HAVE_VIGIL_GPU_CUDA
#include "gpu_cuda.h"
#endif
#include "match.h"
#include "mgmt.h"
#include "store.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_counter.h"
#include "vg_pool.h"
#include "pipeline_evidence.h"
#include "pipeline.h"

#define MAX_FACES 32 /* per frame */
#define MAX_TRACKS 64
#define TRACK_IOU 0.3
#define TRACK_TTL_S 1.0 /* a track not seen for this long (RTP time) is over */
#define MAX_ALERTS 4096
#define CROP_MAX 640
#define LATENCY_SAMPLES 65536 /* the report's latency figures cover the last this many frames */
#define OUTCOMES_EVERY_NS (60 * VG_NS_PER_SEC) /* reviews made during a run reach its store this often */
#define FRAME_HDR 128         /* struct queued_frame, padded so the pixels start on a cache line */
#define BATCH_MAX 64          /* frames per batch of the nets, at most */
#define GPU_DEVICE 0          /* the GPU the nets, the matcher and NVDEC's frames share */

/* How a queued frame's pixels are laid out: gpu_cuda.h's GPU_CUDA_RGB24, _I420, _NV12. */
enum frame_fmt { FRAME_RGB24 = 0, FRAME_I420 = 1, FRAME_NV12 = 2 };

/*
 * A sampled frame on its way from a camera's decode thread to the analysis thread: this header,
 * then the pixels, in one buffer of the camera's biometric pool (or, from NVDEC, the decoder's own
 * frame on the device, held by DEVICE). The pool zeroes the buffer when the analysis returns it,
 * and a device frame is zeroed before the decoder gets it back, so a non-match's pixels live
 * exactly as long as its analysis.
 */
struct queued_frame {
	struct vg_pool *pool; /* where the buffer goes back (the camera's pool when it was queued) */
	AVFrame *device;      /* NVDEC's frame, its planes on the GPU; NULL: the pixels follow */
	const uint8_t *plane[3];
	int pitch[3];
	int fmt, w, h;
	int64_t pts;          /* unwrapped RTP time, 90 kHz */
	uint64_t queued_ns;
};
_Static_assert(sizeof(struct queued_frame) <= FRAME_HDR, "the frame header outgrew its padding");

/* The analysis stage's counters (vigil_analysis_<name> in /metrics): one row per camera for its
 * decode thread's sampling and drops, and one for the analysis thread (ROW_ANALYSIS). */
#define ANALYSIS_COUNTERS(X, P)                                                              \
	X(P, frames_sampled, "frames sampled at the cameras' analysis rates")                \
	X(P, frames_dropped, "sampled frames dropped: the camera's analysis queue was full") \
	X(P, frames_analysed, "frames through the face nets")                               \
	X(P, faces_scanned, "faces detected (the public record's faces scanned)")           \
	X(P, faces_gated, "faces below the quality gate, never matched")                    \
	X(P, faces_matched, "sightings within a watchlist's threshold")                     \
	X(P, alerts, "alerts raised for a person's review")                                 \
	X(P, batches, "batches of frames through the face nets")                            \
	X(P, nets_us, "time in the face nets, microseconds (on the GPU: its busy time)")
VG_COUNTERS_DECLARE(analysis, ANALYSIS, ANALYSIS_COUNTERS)
#define ROW_ANALYSIS DP_MAX_CAMERAS

struct track {
	uint64_t id;
	double box[4];
	double vx, vy;    /* centre velocity, pixels per 90 kHz tick */
	int64_t last_pts; /* 90 kHz, unwrapped */
	char alerted[4][MATCH_SUBJECT_MAX + 1];
	unsigned alert_idx[4];   /* index into the pipeline's alerts of each alerted subject */
	double best_quality[4];  /* quality of the crop each alert carries */
	unsigned n_alerted;
	bool live;
};

/*
 * One camera. The decode side (sampling, colour conversion, queueing) runs on the camera's decode
 * thread alone; the analysis side (tracks, counts, the frame being analysed) on the analysis
 * thread alone. They meet only through QUEUE and the SLOTS semaphore, which bounds what is queued
 * or being analysed to the pipeline's queue depth (DESIGN.md: no queue grows without bound).
 */
struct camera {
	/* decode side */
	bool have_first;
	uint32_t last_ts;
	int64_t in_pts;        /* unwrapped RTP time of the newest decoded frame */
	int64_t last_analysed; /* pts of the last frame sampled for analysis */
	int in_w, in_h, in_fmt;
	struct SwsContext *sws;
	struct vg_pool *pool;  /* queue_depth frames of FRAME_HDR + in_w * in_h * 3 bytes, biometric */
	bool pinned;           /* POOL is registered with CUDA (pool_pin) */
	size_t pool_frame_bytes;
	sem_t slots;           /* free frame buffers: taken by the decode side, given back by the analysis */
	struct rte_ring *queue;
	uint64_t frames_sampled, frames_dropped, queue_max;
	uint64_t frames_oversize; /* of the dropped: larger than the GPU takes */
	uint64_t wait_ns;      /* lossless runs: time the decode thread waited for a free buffer */

	/* analysis side: the frame being analysed */
	int64_t pts;
	int w, h;
	const uint8_t *rgb;    /* its RGB pixels (the CPU nets), or NULL: the GPU has them */
	int batch_index;       /* its place in the batch (the GPU's crops) */
	struct track tracks[MAX_TRACKS];
	uint64_t next_track;
	struct pipeline_camera_counts n;
};

struct alert {
	unsigned cam;
	int64_t pts;
	uint64_t track;
	char subject[MATCH_SUBJECT_MAX + 1];
	uint32_t watchlist;
	float value;
	int32_t box[4];
	struct store_handle evidence;
	int64_t mgmt_id; /* the alert's id in mgmt's database, 0 if it could not be recorded */
};

struct pipeline {
	struct pipeline_conf conf;
	pthread_t analysis_thread;
	bool analysis_running;
	atomic_bool stop;     /* set once the decode side is done: drain what is queued, then exit */
	sem_t ready;          /* frames queued, over all cameras (plus one wake-up at the stop) */
	atomic_uint n_cams;   /* cameras 0..n_cams-1 have had a frame queued */
	atomic_uint queued;   /* frames in the queues now, all cameras (the metrics' gauge) */
	unsigned next_cam;    /* analysis thread: round robin, so no camera starves the others */
	void *rings;          /* the cameras' queues, one allocation */
	uint32_t *latency_us; /* LATENCY_SAMPLES, queued to analysed */
	uint64_t n_latency;
	struct gpu_model *model;
	struct gpu_cuda_faces *gpu; /* --gpu cuda...: the whole face pipeline on the device */
	int gpu_device;             /* GPU_DEVICE, or -1: the host emulation (--gpu emulate) */
	bool match_on_device;       /* the matcher scans on the GPU, where the descriptors are */
	char match_where[160];      /* "gpu", or why the matcher stayed on the CPU */
	uint64_t gpu_bytes;         /* device memory the pipeline holds (fixed at open: the gauge) */
	struct match_db *match;
	struct match_ctx *ctx;
	struct store *store;
	struct mgmt_db *db; /* with a watchlist: alerts are recorded here for review */
	uint64_t scanned_reported;
	struct camera cams[DP_MAX_CAMERAS];
	/* the batch being analysed (analysis thread) */
	struct batch_frame {
		struct queued_frame *qf;
		unsigned cam;
		int first, count;   /* its faces in FACES */
	} batch[BATCH_MAX];
	unsigned batch_max;
	uint64_t batch_deadline_ns;
	struct gpu_face *faces;       /* batch_max * MAX_FACES, biometric */
	float *q;                     /* their descriptors for a matcher on the host, biometric */
	int *keep;                    /* the faces that passed the gate, in batch order */
	struct match_result *res;     /* the matcher's answers for them */
	struct vg_pool *faces_pool;
	uint64_t batches, batched_frames, batch_largest, batch_deadlines, nets_errors, nets_ns;
	uint64_t frames_on_device, match_host_fallbacks;
	struct alert *alerts;
	unsigned n_alerts;
	uint64_t faces_scanned, evidence_bytes, analysis_ns;
	uint64_t started_ns, last_progress_ns;
	uint64_t better_crops; /* alerts whose evidence was replaced by a better crop of the track */
	uint64_t outcomes_ns;  /* when review outcomes were last applied to the store */
	struct vg_counter_block *counters;
	struct vg_counter_row *row; /* the analysis thread's */
	uint8_t *crop; /* CROP_MAX^2 * 3, biometric */
	struct vg_pool *crop_pool;
};

/* Camera CAM's name, as alerts and the report give it. */
static void camera_name(const struct pipeline *p, unsigned cam, char *buf, size_t len)
{
	if (cam < DP_MAX_CAMERAS && p->conf.camera_name[cam] && *p->conf.camera_name[cam])
		snprintf(buf, len, "%s", p->conf.camera_name[cam]);
	else
		snprintf(buf, len, "cam%u", cam + 1);
}

/* The threshold an alert was judged against, as the matcher holds it (per alert, not per frame). */
static float threshold_of(const struct pipeline *p, uint32_t id)
{
	float t;

	return match_watchlist_threshold(p->match, id, &t) == 0 ? t : GPU_MATCH_THRESHOLD;
}

static int authorise_and_load(struct pipeline *p, const char *run_desc, char *err, size_t errlen)
{
	struct mgmt_actor who = { "vigild-run", (uint32_t)getuid(), 0 };
	struct mgmt_db *db = NULL;
	char path[512], object[64], detail[1024];
	int rc, allowed;

	if (!p->conf.state_dir || p->conf.deployment <= 0)
		return vg_errf(err, errlen, -EINVAL, "matching needs --state-dir and --deployment (invariant 2)");
	snprintf(path, sizeof(path), "%s/vigil.db", p->conf.state_dir);
	rc = mgmt_db_open(&db, path, err, errlen);
	if (rc < 0)
		return rc;
	allowed = mgmt_deployment_matching_allowed(db, p->conf.deployment, (int64_t)time(NULL));
	snprintf(object, sizeof(object), "deployment/%" PRId64, p->conf.deployment);
	snprintf(detail, sizeof(detail), "{\"run\":\"%.900s\",\"allowed\":%s}", run_desc, allowed == 1 ? "true" : "false");
	/* A recorded run is audited like any other matching, refused or not. */
	mgmt_audit_append(db, &who, allowed == 1 ? "run.recorded" : "run.recorded.refused", object, detail, NULL);
	p->db = db;
	if (allowed != 1)
		return vg_errf(err, errlen, -EPERM, "deployment %" PRId64 " is not authorised and active now: matching refused",
			       p->conf.deployment);

	struct match_db_conf mc = { .d = GPU_DESCRIPTOR_DIM, .metric = MATCH_METRIC_L2, .n_shards = 1,
				    .model = "face-api-1.7.15", .kernel = MATCH_KERNEL_AUTO };
	rc = match_db_open(&p->match, &mc, err, errlen);
	if (rc < 0)
		return rc;
#ifdef HAVE_VIGIL_GPU_CUDA
	/* With the nets on the GPU, the watchlist goes there too: descriptors are matched where the
	 * nets left them. If the GPU cannot take it, the CPU matches (the report says why). */
	if (p->gpu) {
		char why[128];

		if (gpu_cuda_match_attach(p->match, p->gpu_device, why, sizeof(why)) == 0) {
			p->match_on_device = true;
			snprintf(p->match_where, sizeof(p->match_where), "gpu");
		} else {
			snprintf(p->match_where, sizeof(p->match_where), "cpu: %s", why);
		}
	}
#endif
	/* Every watchlist of the deployment, each file whole or not at all (ids must differ). */
	for (const char *w = p->conf.watchlist_path; *w;) {
		size_t len = strcspn(w, ",");
		char file[512];

		if (len >= sizeof(file))
			return vg_errf(err, errlen, -ENAMETOOLONG, "watchlist path too long");
		memcpy(file, w, len);
		file[len] = '\0';
		rc = match_load_file(p->match, file, err, errlen);
		if (rc < 0)
			return rc;
		w += len + (w[len] == ',');
	}
	rc = match_ctx_open(&p->ctx, p->match, 1, p->batch_max * MAX_FACES);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "matcher: %s", vg_strerror(rc));

	struct store_conf sc = { 0 };
	char dir[512], key[512];
	snprintf(dir, sizeof(dir), "%s/evidence", p->conf.state_dir);
	snprintf(key, sizeof(key), "%s/appliance.key", p->conf.state_dir);
	sc.dir = dir;
	sc.appliance_key_path = key;
	sc.create_appliance_key = true;
	struct mgmt_retention ret;
	/* The periods set with `vigilctl retention set` (the store's defaults where none was set). */
	if (mgmt_retention_get(p->db, &ret) == 0) {
		sc.retain_confirmed_s = ret.confirmed_s;
		sc.retain_rejected_s = ret.rejected_s;
		sc.retain_unreviewed_s = ret.unreviewed_s;
	}
	rc = store_open(&p->store, &sc, err, errlen);
	if (rc < 0)
		return rc;
	rc = store_deployment_open(p->store, (uint64_t)p->conf.deployment);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "evidence store: deployment %" PRId64 ": %s", p->conf.deployment,
			       vg_strerror(rc));
	/* Reviews recorded while no one held the store: their retention, before the first sweep. */
	pipeline_outcomes_apply(p->db, p->store);
	p->outcomes_ns = vg_clock_ns();
	return 0;
}

static void *analysis_main(void *arg);

/* Every camera's queue, in one allocation made at open (a few hundred KiB for 256 cameras), so
 * that no queue appears while the analysis thread looks at the cameras. */
static int cameras_queues_init(struct pipeline *p)
{
	ssize_t ring_bytes = rte_ring_get_memsize_elem(sizeof(void *), p->conf.queue_depth);
	size_t stride;

	if (ring_bytes < 0)
		return (int)ring_bytes;
	stride = ((size_t)ring_bytes + 63) & ~(size_t)63;
	p->rings = aligned_alloc(64, stride * DP_MAX_CAMERAS);
	if (!p->rings)
		return -ENOMEM;
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		char name[RTE_RING_NAMESIZE];

		snprintf(name, sizeof(name), "analysis%u", i);
		p->cams[i].queue = (struct rte_ring *)((char *)p->rings + stride * i);
		/* Exact size: the ring holds queue_depth frames, as many as the camera has buffers. */
		int rc = rte_ring_init(p->cams[i].queue, name, p->conf.queue_depth,
				       RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * --gpu: the whole face pipeline on GPU 0 (gpu_cuda_faces), for batches of up to batch_max frames
 * of up to gpu_max_width x gpu_max_height; the matcher follows it there (authorise_and_load).
 */
static int gpu_open(struct pipeline *p, char *err, size_t errlen)
{
	/* indexed by gpu_cuda.h's mode: GPU_CUDA_EXACT, GPU_CUDA_FP32, GPU_CUDA_FP16; then "emulate",
	 * the exact mode's host emulation: the GPU's code path on the CPU, to check it without one */
	static const char *const modes[] = {"cuda-exact", "cuda", "cuda-fp16", "emulate"};
	enum { EMULATE = 3 };
	const char *g = p->conf.gpu;
	int mode = -1;

	if (!g || strcmp(g, "cpu") == 0)
		return 0;
	for (int i = 0; i < (int)VG_ARRAY_SIZE(modes); i++)
		if (strcmp(g, modes[i]) == 0)
			mode = i;
	if (mode < 0)
		return vg_errf(err, errlen, -EINVAL, "--gpu %s: not cpu, cuda, cuda-fp16, cuda-exact or emulate", g);
	p->gpu_device = mode == EMULATE ? -1 : GPU_DEVICE;
	mode = mode == EMULATE ? 0 : mode;
#ifdef HAVE_VIGIL_GPU_CUDA
	_Static_assert(GPU_CUDA_EXACT == 0 && GPU_CUDA_FP32 == 1 && GPU_CUDA_FP16 == 2 && EMULATE == 3,
		       "modes[] is gpu_cuda.h's order, then emulate");
	_Static_assert((int)GPU_CUDA_RGB24 == (int)FRAME_RGB24 && (int)GPU_CUDA_I420 == (int)FRAME_I420 &&
			       (int)GPU_CUDA_NV12 == (int)FRAME_NV12,
		       "frame_fmt is gpu_cuda.h's");
	{
		struct gpu_cuda_faces_conf gc = {
			.device = p->gpu_device, .mode = mode, .max_frames = (int)p->batch_max,
			.max_width = (int)p->conf.gpu_max_width, .max_height = (int)p->conf.gpu_max_height,
			.max_faces = MAX_FACES, .tiled = p->conf.tiled, .overlap = 192, .graphs = 1,
		};

		struct gpu_cuda_faces_stats st;
		int rc;

		rc = gpu_cuda_faces_create(&p->gpu, p->model, &gc, err, errlen);
		gpu_cuda_faces_stats_get(p->gpu, &st);
		p->gpu_bytes = st.device_bytes;
		return rc;
	}
#else
	return vg_errf(err, errlen, -ENOTSUP, "--gpu %s: this vigild was built without CUDA (no nvcc)", g);
#endif
}

bool pipeline_takes_device_frames(const struct pipeline *p, int device)
{
	return p && p->gpu && p->gpu_device >= 0 && device == p->gpu_device;
}

int pipeline_open(struct pipeline **out, const struct pipeline_conf *conf, const char *run_desc, char *err,
		  size_t errlen)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	int rc;

	if (!p)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	p->conf = *conf;
	if (!p->conf.analysis_fps)
		p->conf.analysis_fps = 10;
	if (p->conf.min_interocular_px <= 0)
		p->conf.min_interocular_px = 16;
	if (p->conf.max_abs_yaw_deg <= 0)
		p->conf.max_abs_yaw_deg = 50;
	if (p->conf.min_sharpness <= 0)
		p->conf.min_sharpness = 5;
	if (!p->conf.queue_depth)
		p->conf.queue_depth = 4;
	if (p->conf.queue_depth > 64)
		p->conf.queue_depth = 64;
	/* A batch gathers frames of all cameras; on the CPU the nets gain nothing from it (default 1),
	 * on a GPU a batch keeps it busy (default 32). */
	bool on_gpu = p->conf.gpu && strcmp(p->conf.gpu, "cpu") != 0;
	p->batch_max = p->conf.batch ? p->conf.batch : on_gpu ? 32 : 1;
	p->batch_max = p->batch_max > BATCH_MAX ? BATCH_MAX : p->batch_max;
	p->batch_deadline_ns = (uint64_t)(p->conf.batch_deadline_ms ? p->conf.batch_deadline_ms : 10) * 1000000;
	if (!p->conf.gpu_max_width || !p->conf.gpu_max_height) {
		p->conf.gpu_max_width = 3840;
		p->conf.gpu_max_height = 2160;
	}
	snprintf(p->match_where, sizeof(p->match_where), "cpu");
	sem_init(&p->ready, 0, 0);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		sem_init(&p->cams[i].slots, 0, p->conf.queue_depth);
	p->alerts = calloc(MAX_ALERTS, sizeof(*p->alerts));
	p->latency_us = calloc(LATENCY_SAMPLES, sizeof(*p->latency_us));
	rc = cameras_queues_init(p);
	if (rc == 0)
		rc = vg_counter_block_create(&p->counters, "analysis", analysis_counter_desc, ANALYSIS__COUNT,
					     DP_MAX_CAMERAS + 1);
	if (!p->alerts || !p->latency_us || rc < 0) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_close;
	}
	rc = vg_pool_create(&p->crop_pool, "crop", (size_t)CROP_MAX * CROP_MAX * 3, 1, VG_POOL_BIOMETRIC);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "crop pool: %s", vg_strerror(rc));
		goto out_close;
	}
	p->crop = vg_pool_get(p->crop_pool);
	/* a batch's faces and their descriptors: biometric, zeroed as each batch retires */
	{
		size_t nf = (size_t)p->batch_max * MAX_FACES;
		size_t bytes = nf * (sizeof(struct gpu_face) + GPU_DESCRIPTOR_DIM * sizeof(float));

		rc = vg_pool_create(&p->faces_pool, "faces", bytes, 1, VG_POOL_BIOMETRIC);
		if (rc < 0) {
			vg_errf(err, errlen, rc, "faces pool: %s", vg_strerror(rc));
			goto out_close;
		}
		p->faces = vg_pool_get(p->faces_pool);
		p->q = (float *)(p->faces + nf);
		p->keep = calloc(nf, sizeof(*p->keep));
		p->res = calloc(nf, sizeof(*p->res));
		if (!p->keep || !p->res) {
			rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
			goto out_close;
		}
	}
	rc = gpu_model_open(&p->model, conf->models_dir, err, errlen);
	if (rc < 0)
		goto out_close;
	rc = gpu_open(p, err, errlen);
	if (rc < 0)
		goto out_close;
	if (conf->watchlist_path) {
		rc = authorise_and_load(p, run_desc, err, errlen);
		if (rc < 0)
			goto out_close;
	}
	rc = -pthread_create(&p->analysis_thread, NULL, analysis_main, p);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "analysis thread: %s", vg_strerror(rc));
		goto out_close;
	}
	p->row = vg_counter_block_row(p->counters, ROW_ANALYSIS);
	p->analysis_running = true;
	*out = p;
	return 0;
out_close:
	pipeline_close(&p);
	return rc;
}

static double iou(const double *a, const double *b)
{
	double x0 = fmax(a[0], b[0]), y0 = fmax(a[1], b[1]);
	double x1 = fmin(a[0] + a[2], b[0] + b[2]), y1 = fmin(a[1] + a[3], b[1] + b[3]);
	double inter = fmax(0, x1 - x0) * fmax(0, y1 - y0), uni = a[2] * a[3] + b[2] * b[3] - inter;

	return uni > 0 ? inter / uni : 0;
}

/*
 * The track this face continues: among live tracks not yet given a face in this frame, the one
 * whose box, moved by its velocity to this frame, overlaps best (IoU), or else whose predicted
 * centre is nearest, within one box size (people cross a camera at hundreds of pixels a second);
 * otherwise a new track. Cost: MAX_TRACKS per face.
 */
static struct track *track_face(struct camera *c, const double *box)
{
	struct track *best = NULL, *free_slot = NULL;
	double best_iou = TRACK_IOU, best_dist = INFINITY;
	double cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;

	for (int i = 0; i < MAX_TRACKS; i++) {
		struct track *t = &c->tracks[i];

		if (t->live && (double)(c->pts - t->last_pts) > TRACK_TTL_S * 90000)
			t->live = false;
		if (!t->live) {
			if (!free_slot)
				free_slot = t;
			continue;
		}
		if (t->last_pts == c->pts)
			continue; /* already has a face in this frame */
		double dt = (double)(c->pts - t->last_pts);
		double moved[4] = { t->box[0] + t->vx * dt, t->box[1] + t->vy * dt, t->box[2], t->box[3] };
		double v = iou(moved, box);
		if (v >= best_iou) {
			best_iou = v;
			best = t;
			best_dist = -1;
			continue;
		}
		double dx = moved[0] + moved[2] / 2 - cx, dy = moved[1] + moved[3] / 2 - cy;
		double dist = sqrt(dx * dx + dy * dy);
		if (best_dist >= 0 && dist < fmax(t->box[2], t->box[3]) && dist < best_dist) {
			best_dist = dist;
			best = t;
		}
	}
	if (!best && free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->id = ++c->next_track;
		free_slot->live = true;
		c->n.tracks++;
		best = free_slot;
	}
	if (best) {
		double dt = (double)(c->pts - best->last_pts);
		if (best->last_pts != 0 && dt > 0) {
			/* Smoothed velocity of the centre, so one jittery box does not throw the prediction. */
			best->vx = 0.5 * best->vx + 0.5 * (cx - (best->box[0] + best->box[2] / 2)) / dt;
			best->vy = 0.5 * best->vy + 0.5 * (cy - (best->box[1] + best->box[3] / 2)) / dt;
		}
		memcpy(best->box, box, sizeof(best->box));
		best->last_pts = c->pts;
	}
	return best;
}

/* Copy the face's aligned crop (clipped, at most CROP_MAX a side, nearest) into p->crop. */
static void crop_face(struct pipeline *p, const struct camera *c, const struct gpu_face *f, uint32_t *w, uint32_t *h)
{
	int x0 = (int)fmax(0, f->align[0]), y0 = (int)fmax(0, f->align[1]);
	int x1 = (int)fmin(c->w, f->align[0] + f->align[2]), y1 = (int)fmin(c->h, f->align[1] + f->align[3]);
	int cw = x1 - x0, ch = y1 - y0;
	double step = fmax(1.0, fmax(cw, ch) / (double)CROP_MAX);

	*w = *h = 0;
	if (cw <= 0 || ch <= 0)
		return;
	*w = (uint32_t)(cw / step);
	*h = (uint32_t)(ch / step);
#ifdef HAVE_VIGIL_GPU_CUDA
	if (!c->rgb) { /* the frame is the GPU's: the crop is cut there, the only pixels that come back */
		if (gpu_cuda_faces_crop(p->gpu, c->batch_index, x0, y0, (int)*w, (int)*h, step, p->crop) < 0)
			*w = *h = 0;
		return;
	}
#endif
	for (uint32_t y = 0; y < *h; y++)
		for (uint32_t x = 0; x < *w; x++)
			memcpy(p->crop + ((size_t)y * *w + x) * 3,
			       c->rgb + ((size_t)(y0 + (int)(y * step)) * (size_t)c->w + (size_t)(x0 + (int)(x * step))) * 3, 3);
}

/* One number for "a better crop to show a reviewer": larger, sharper, more frontal. */
static double crop_quality(const struct gpu_face *f)
{
	return f->quality.interocular_px * fmin(1.0, f->quality.sharpness / 50.0) *
	       fmax(0.1, cos(f->quality.yaw_deg * M_PI / 180.0));
}

/* Store F's crop as evidence for SA; fills *H (unsaved on failure). */
static void put_evidence(struct pipeline *p, const struct camera *c, const struct gpu_face *f,
			 const struct store_alert *sa, struct store_handle *h)
{
	struct store_crop crop = { STORE_CROP_RGB, p->crop, 0, 0, 0 };

	crop_face(p, c, f, &crop.width, &crop.height);
	crop.len = (size_t)crop.width * crop.height * 3;
	/* The evidence: durable before the alert counts as saved (invariant 5); a failure still alerts. */
	if (!crop.len || store_put(p->store, sa, &crop, h) < 0)
		store_handle_unsaved(h, sa);
	else
		p->evidence_bytes += h->len;
	vg_scrub(p->crop, crop.len);
}

static void locator(const struct store_handle *h, char *buf, size_t len)
{
	snprintf(buf, len, "store:deployment/%" PRIu64 "/segment/%u@%" PRIu64 "+%u#%" PRIu64, h->deployment,
		 h->segment, h->offset, h->len, h->seq);
}

static void fill_store_alert(const struct pipeline *p, unsigned cam, const struct camera *c, const struct track *t,
			     const struct gpu_face *f, const struct match_hit *hit, struct store_alert *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->deployment = (uint64_t)p->conf.deployment;
	sa->time_ns = vg_clock_realtime_ns();
	sa->track = t->id;
	sa->pts = c->pts;
	camera_name(p, cam, sa->camera, sizeof(sa->camera));
	/* The store's record holds 63 bytes of the id (a 64-byte id is cut); mgmt's alert keeps it whole. */
	snprintf(sa->subject, sizeof(sa->subject), "%.63s", hit->subject);
	snprintf(sa->watchlist, sizeof(sa->watchlist), "%u", hit->watchlist);
	snprintf(sa->metric, sizeof(sa->metric), "l2");
	snprintf(sa->model, sizeof(sa->model), "face-api-1.7.15");
	sa->value = hit->value;
	sa->threshold = threshold_of(p, hit->watchlist);
	for (int i = 0; i < 4; i++)
		sa->box[i] = (int32_t)lround(f->box[i]);
	sa->quality[0] = (float)f->score;
	sa->quality[1] = (float)f->quality.sharpness;
	sa->quality[2] = (float)f->quality.yaw_deg;
}

/*
 * A later sighting of an alerted subject on the same track: if its crop is clearly better (by a
 * quarter), store it and point the alert at it, while the alert is unreviewed. Bounded: at most one
 * store write per improvement, and each improvement needs 25% more quality than the last.
 */
static void better_evidence(struct pipeline *p, unsigned cam, struct camera *c, struct track *t, unsigned k,
			    const struct gpu_face *f, const struct match_hit *hit)
{
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	struct alert *a = &p->alerts[t->alert_idx[k]];
	double q = crop_quality(f);
	struct store_alert sa;
	struct store_handle h;
	char loc[128];

	if (q < 1.25 * t->best_quality[k] || !a->mgmt_id)
		return;
	fill_store_alert(p, cam, c, t, f, hit, &sa);
	put_evidence(p, c, f, &sa, &h);
	if (!h.saved)
		return;
	locator(&h, loc, sizeof(loc));
	if (mgmt_alert_set_evidence(p->db, &vigild, a->mgmt_id, loc) == 0) {
		a->evidence = h;
		t->best_quality[k] = q;
		p->better_crops++;
	}
}

static void raise_alert(struct pipeline *p, unsigned cam, struct camera *c, struct track *t, const struct gpu_face *f,
			const struct match_hit *hit)
{
	struct store_alert sa;
	struct alert *a;

	if (p->n_alerts >= MAX_ALERTS)
		return;
	a = &p->alerts[p->n_alerts++];
	vg_counter_add(p->row, ANALYSIS_alerts, 1);
	a->cam = cam;
	a->pts = c->pts;
	a->track = t->id;
	snprintf(a->subject, sizeof(a->subject), "%s", hit->subject);
	a->watchlist = hit->watchlist;
	a->value = hit->value;
	for (int i = 0; i < 4; i++)
		a->box[i] = (int32_t)lround(f->box[i]);

	fill_store_alert(p, cam, c, t, f, hit, &sa);
	put_evidence(p, c, f, &sa, &a->evidence);

	/* Then the alert itself, for a person to review (invariant 3); after the evidence is durable, so
	 * a crash never leaves a recorded alert pointing at evidence that was not acknowledged. */
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	struct mgmt_alert ma = { .deployment = p->conf.deployment, .pts = c->pts, .track = t->id, .value = hit->value,
				 .threshold = threshold_of(p, hit->watchlist) };
	camera_name(p, cam, ma.camera, sizeof(ma.camera));
	snprintf(ma.subject, sizeof(ma.subject), "%s", hit->subject);
	snprintf(ma.watchlist, sizeof(ma.watchlist), "%u", hit->watchlist);
	snprintf(ma.metric, sizeof(ma.metric), "l2");
	memcpy(ma.box, a->box, sizeof(ma.box));
	if (a->evidence.saved)
		locator(&a->evidence, ma.evidence, sizeof(ma.evidence));
	if (mgmt_alert_raise(p->db, &vigild, &ma) == 0)
		a->mgmt_id = ma.id;
	/* The faces scanned so far join the public record with each alert, and at the end. */
	mgmt_deployment_add_scanned(p->db, p->conf.deployment, p->faces_scanned - p->scanned_reported);
	p->scanned_reported = p->faces_scanned;
}

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
			return true;
		/* the GPU's copy of the watchlist is missing or failed: the host matches (counted) */
		p->match_host_fallbacks += (uint64_t)nq;
		if (gpu_cuda_faces_descriptors(p->gpu, p->keep, nq, p->q) < 0)
			return false;
		return match_query(p->ctx, p->q, (unsigned)nq, 1, p->res) == nq;
	}
#endif
	for (int j = 0; j < nq; j++)
		memcpy(p->q + (size_t)j * GPU_DESCRIPTOR_DIM, p->faces[p->keep[j]].descriptor, GPU_DESCRIPTOR_DIM * sizeof(float));
	return match_query(p->ctx, p->q, (unsigned)nq, 1, p->res) == nq;
}

/* Frame I of the batch, once its faces are matched: counts, tracks, alerts, in frame order. Its
 * gated faces are skipped; K0 is its first entry in p->keep / p->res. Returns the next K. */
static int frame_results(struct pipeline *p, unsigned i, int k0, int nkeep, bool matched)
{
	const struct batch_frame *b = &p->batch[i];
	struct camera *c = &p->cams[b->cam];
	struct track *tracks[MAX_FACES];
	int k = k0, nk = 0;

	c->pts = b->qf->pts;
	c->w = b->qf->w;
	c->h = b->qf->h;
	c->rgb = b->qf->fmt == FRAME_RGB24 && !b->qf->device ? b->qf->plane[0] : NULL;
	c->batch_index = (int)i;
	c->n.frames_analysed++;
	vg_counter_add(p->row, ANALYSIS_frames_analysed, 1);
	c->n.faces_detected += (uint64_t)b->count;
	vg_counter_add(p->row, ANALYSIS_faces_scanned, (uint64_t)b->count);
	p->faces_scanned += (uint64_t)b->count;
	while (k < nkeep && p->keep[k] < b->first + b->count)
		k++;
	nk = k - k0;   /* this frame's faces that passed the gate */
	c->n.faces_gated += (uint64_t)(b->count - nk);
	vg_counter_add(p->row, ANALYSIS_faces_gated, (uint64_t)(b->count - nk));
	for (int j = 0; j < nk; j++)
		tracks[j] = track_face(c, p->faces[p->keep[k0 + j]].box);
	for (int j = 0; matched && j < nk; j++) {
		const struct gpu_face *f = &p->faces[p->keep[k0 + j]];
		const struct match_result *r = &p->res[k0 + j];
		struct track *t = tracks[j];

		if (r->n == 0 || !r->hit[0].pass || !t)
			continue;
		c->n.faces_matched++;
		vg_counter_add(p->row, ANALYSIS_faces_matched, 1);
		bool seen = false;
		for (unsigned a = 0; a < t->n_alerted && !seen; a++) {
			if (strcmp(t->alerted[a], r->hit[0].subject) == 0) {
				seen = true; /* one alert per subject per track, carrying its best crop */
				better_evidence(p, b->cam, c, t, a, f, &r->hit[0]);
			}
		}
		if (seen || t->n_alerted >= 4 || p->n_alerts >= MAX_ALERTS)
			continue;
		t->alert_idx[t->n_alerted] = p->n_alerts;
		t->best_quality[t->n_alerted] = crop_quality(f);
		snprintf(t->alerted[t->n_alerted++], sizeof(t->alerted[0]), "%s", r->hit[0].subject);
		raise_alert(p, b->cam, c, t, f, &r->hit[0]);
	}
	c->rgb = NULL;
	return k;
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
		const struct gpu_quality *g = &p->faces[i].quality;

		if (g->interocular_px < p->conf.min_interocular_px || fabs(g->yaw_deg) > p->conf.max_abs_yaw_deg ||
		    g->sharpness < p->conf.min_sharpness)
			continue;
		p->keep[nq++] = i;
	}
	matched = batch_match(p, nq);
	for (unsigned i = 0, k = 0; i < n; i++)
		k = (unsigned)frame_results(p, i, (int)k, nq, matched);
	/* The results hold ids and distances, not biometrics; the faces and descriptors do. */
	vg_scrub(p->q, (size_t)nq * GPU_DESCRIPTOR_DIM * sizeof(float));
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
static void *analysis_main(void *arg)
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

/* Take a free frame buffer of C: wait for one in a lossless run, else give up at once. */
static bool take_slot(struct pipeline *p, struct camera *c)
{
	if (sem_trywait(&c->slots) == 0)
		return true;
	if (!p->conf.lossless)
		return false;
	uint64_t t0 = vg_clock_ns();
	while (sem_wait(&c->slots) != 0)
		; /* EINTR */
	c->wait_ns += vg_clock_ns() - t0;
	return true;
}

/*
 * C's frame pool pinned for the GPU's copies (PIN), or no longer (before it is freed): frames go
 * to the device by DMA, asynchronously. Best effort: unpinned, the copies are only slower.
 */
static void pool_pin(struct pipeline *p, struct camera *c, bool pin)
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
		if (!take_slot(p, c))
			break;
	if (held < depth) {
		rc = -EBUSY;
		goto out_release;
	}
	sws_freeContext(c->sws);
	c->sws = NULL; /* made by fill_frame for the formats that need it */
	if (bytes > c->pool_frame_bytes) {
		pool_pin(p, c, false);
		vg_pool_destroy(&c->pool);
		c->pool_frame_bytes = 0;
		if (vg_pool_create(&c->pool, "frame", bytes, depth, VG_POOL_BIOMETRIC) == 0)
			c->pool_frame_bytes = bytes;
		pool_pin(p, c, true);
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
	if (!c->have_first) {
		c->have_first = true;
		c->in_pts = 0;
		c->last_analysed = INT64_MIN / 2;
	} else {
		c->in_pts += (int32_t)(f->ts - c->last_ts);
	}
	c->last_ts = f->ts;
	/* Sample at the camera's analysis rate, on the camera's own clock. */
	unsigned fps = p->conf.camera_fps[cam] ? p->conf.camera_fps[cam] : p->conf.analysis_fps;
	if (c->in_pts - c->last_analysed < (int64_t)(90000 / fps))
		return;
	c->last_analysed = c->in_pts;
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
	if (!take_slot(p, c)) {
		drop_frame(c, row);
		return;
	}
	struct queued_frame *qf = vg_pool_get(c->pool);
	if (!qf) { /* cannot happen: a slot is a buffer */
		sem_post(&c->slots);
		drop_frame(c, row);
		return;
	}
	*qf = (struct queued_frame){ .pool = c->pool, .w = c->in_w, .h = c->in_h, .pts = c->in_pts };
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

void pipeline_write_privacy(const struct pipeline *p, FILE *f)
{
	const struct vg_pool *pools[DP_MAX_CAMERAS + 1];
	unsigned n = 0, dontdump = 0, locked = 0;

	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		if (p->cams[i].pool)
			pools[n++] = p->cams[i].pool;
	if (p->crop_pool)
		pools[n++] = p->crop_pool;
	for (unsigned i = 0; i < n; i++) {
		dontdump += vg_pool_kernel_dontdump(pools[i]) == 1;
		locked += vg_pool_locked(pools[i]);
	}
	/* The kernel's view, not the code's intent: what a core dump or swap would actually take. */
	fprintf(f, "\"privacy\":{\"undumpable\":%s,\"biometric_pools\":%u,\"pools_dontdump\":%u,\"pools_locked\":%u}",
		prctl(PR_GET_DUMPABLE) == 0 ? "true" : "false", n, dontdump, locked);
}

void pipeline_write_gauges(struct pipeline *p, FILE *f)
{
	/* Our own atomics: the ring's count is plain loads of indices another thread writes. */
	unsigned n = atomic_load_explicit(&p->n_cams, memory_order_relaxed);
	unsigned queued = atomic_load_explicit(&p->queued, memory_order_relaxed);

	fprintf(f,
		"# HELP vigil_analysis_queued_frames frames waiting for the analysis now, all cameras\n"
		"# TYPE vigil_analysis_queued_frames gauge\nvigil_analysis_queued_frames %u\n"
		"# HELP vigil_analysis_queue_capacity frames each camera may queue\n"
		"# TYPE vigil_analysis_queue_capacity gauge\nvigil_analysis_queue_capacity %u\n"
		"# HELP vigil_analysis_cameras cameras that have had a frame queued\n"
		"# TYPE vigil_analysis_cameras gauge\nvigil_analysis_cameras %u\n"
		"# HELP vigil_analysis_batch_capacity frames a batch of the face nets takes\n"
		"# TYPE vigil_analysis_batch_capacity gauge\nvigil_analysis_batch_capacity %u\n"
		"# HELP vigil_gpu_memory_bytes device memory the face pipeline holds (0: the nets run on the CPU)\n"
		"# TYPE vigil_gpu_memory_bytes gauge\nvigil_gpu_memory_bytes %" PRIu64 "\n",
		queued, p->conf.queue_depth, n, p->batch_max, p->gpu_bytes);
}

/* A one-line reason as a JSON string's body: quotes, backslashes and controls become spaces. */
static void json_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? ' ' : *s, f);
}

/* "matcher": where the watchlist was scanned (after the run). */
static void write_matcher(const struct pipeline *p, FILE *f)
{
	struct match_stats ms = { 0 };

	if (p->match)
		match_stats_get(p->match, &ms);
	fprintf(f, "\"matcher\":{\"where\":\"");
	json_text(f, p->match ? p->match_where : "none");
	fprintf(f,
		"\",\"device_snapshot\":%s,\"device_queries\":%" PRIu64 ",\"device_errors\":%" PRIu64
		",\"host_fallbacks\":%" PRIu64 ",\"device_bytes\":%" PRIu64 "}",
		ms.device_snapshot ? "true" : "false", ms.device_queries, ms.device_errors,
		p->match_host_fallbacks + ms.device_fallbacks, ms.device_bytes);
}

/* "gpu": the face pipeline on the device (after the run), or null on the CPU. */
static void write_gpu(const struct pipeline *p, FILE *f)
{
#ifdef HAVE_VIGIL_GPU_CUDA
	if (p->gpu) {
		struct gpu_cuda_faces_stats st;
		struct gpu_cuda_device_info info = { 0 };

		gpu_cuda_faces_stats_get(p->gpu, &st);
		if (p->gpu_device < 0 || gpu_cuda_device_info(p->gpu_device, &info) < 0)
			snprintf(info.name, sizeof(info.name), "%s", p->gpu_device < 0 ? "host emulation" : "?");
		fprintf(f, "\"gpu\":{\"device\":\"");
		json_text(f, info.name);
		fprintf(f,
			"\",\"batches\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"frames_on_device\":%" PRIu64
			",\"detector_inputs\":%" PRIu64 ",\"faces\":%" PRIu64 ",\"graph_launches\":%" PRIu64
			",\"graph_failures\":%" PRIu64 ",\"cudnn_fallbacks\":%d,\"memory_bytes\":%" PRIu64 "}",
			st.batches, st.frames, p->frames_on_device, st.detector_inputs, st.faces, st.graph_launches,
			st.graph_failures, st.cudnn_fallbacks, st.device_bytes);
		return;
	}
#endif
	(void)p;
	fprintf(f, "\"gpu\":null");
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

void pipeline_write_stages(struct pipeline *p, FILE *f)
{
	uint64_t sampled = 0, dropped = 0, qmax = 0, wait_ns = 0, gated = 0, oversize = 0;
	size_t n = p->n_latency < LATENCY_SAMPLES ? (size_t)p->n_latency : LATENCY_SAMPLES;
	double p50 = 0, p99 = 0, max = 0;

	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		sampled += p->cams[i].frames_sampled;
		dropped += p->cams[i].frames_dropped;
		if (p->cams[i].queue_max > qmax)
			qmax = p->cams[i].queue_max;
		wait_ns += p->cams[i].wait_ns;
		gated += p->cams[i].n.faces_gated;
		oversize += p->cams[i].frames_oversize;
	}
	if (n) { /* after the run: the order of the samples no longer matters */
		qsort(p->latency_us, n, sizeof(*p->latency_us), cmp_u32);
		p50 = p->latency_us[n / 2] / 1e3;
		p99 = p->latency_us[n * 99 / 100 < n - 1 ? n * 99 / 100 : n - 1] / 1e3;
		max = p->latency_us[n - 1] / 1e3;
	}
	fprintf(f,
		"\"analysis\":{\"enabled\":true,\"seconds\":%.3f,\"mode\":\"%s\",\"queue_depth\":%u,\"frames_sampled\":%" PRIu64
		",\"frames_dropped\":%" PRIu64 ",\"queue_max\":%" PRIu64 ",\"decode_wait_seconds\":%.3f,"
		"\"latency_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},\"faces_gated\":%" PRIu64 ",\"better_crops\":%" PRIu64
		",\"nets\":\"%s\",\"nets_seconds\":%.3f,\"nets_errors\":%" PRIu64 ",\"frames_oversize\":%" PRIu64 ","
		"\"batch\":{\"max\":%u,\"deadline_ms\":%.1f,\"batches\":%" PRIu64 ",\"mean\":%.2f,\"largest\":%" PRIu64
		",\"deadline_expired\":%" PRIu64 "},",
		(double)p->analysis_ns / 1e9, p->conf.lossless ? "lossless" : "drop-newest", p->conf.queue_depth, sampled,
		dropped, qmax, (double)wait_ns / 1e9, p50, p99, max, gated, p->better_crops,
		p->conf.gpu ? p->conf.gpu : "cpu", (double)p->nets_ns / 1e9, p->nets_errors, oversize, p->batch_max,
		(double)p->batch_deadline_ns / 1e6, p->batches, p->batches ? (double)p->batched_frames / (double)p->batches : 0.0,
		p->batch_largest, p->batch_deadlines);
	write_matcher(p, f);
	fputc(',', f);
	write_gpu(p, f);
	fputc('}', f);
}

void pipeline_camera_name(const struct pipeline *p, unsigned cam, char *buf, size_t len)
{
	camera_name(p, cam, buf, len);
}

void pipeline_camera_counts(const struct pipeline *p, unsigned cam, struct pipeline_camera_counts *out)
{
	*out = (struct pipeline_camera_counts){ 0 };
	if (cam >= DP_MAX_CAMERAS)
		return;
	*out = p->cams[cam].n;
	out->frames_sampled = p->cams[cam].frames_sampled;
	out->frames_dropped = p->cams[cam].frames_dropped;
}

void pipeline_write_alerts(const struct pipeline *p, FILE *f)
{
	for (unsigned i = 0; i < p->n_alerts; i++) {
		const struct alert *a = &p->alerts[i];
		char ev[128], cam[64];

		camera_name(p, a->cam, cam, sizeof(cam));
		if (a->evidence.saved)
			snprintf(ev, sizeof(ev), "\"store:deployment/%" PRIu64 "/segment/%u@%" PRIu64 "+%u#%" PRIu64 "\"",
				 a->evidence.deployment, a->evidence.segment, a->evidence.offset, a->evidence.len,
				 a->evidence.seq);
		else
			snprintf(ev, sizeof(ev), "null");
		fprintf(f,
			"%s\n {\"id\":\"a%u\",\"camera\":\"%s\",\"pts\":%" PRId64 ",\"track\":%" PRIu64
			",\"subject\":\"%s\",\"watchlist\":%u,\"metric\":\"l2\",\"value\":%.4f,\"box\":[%d,%d,%d,%d],"
			"\"evidence\":%s,\"review_id\":%" PRId64 "}",
			i ? "," : "", i + 1, cam, a->pts, a->track, a->subject, a->watchlist, a->value, a->box[0],
			a->box[1], a->box[2], a->box[3], ev, a->mgmt_id);
	}
}

void pipeline_totals(const struct pipeline *p, uint64_t *faces_scanned, uint64_t *alerts, uint64_t *evidence_bytes,
		     double *analysis_seconds)
{
	*faces_scanned = p->faces_scanned;
	*alerts = p->n_alerts;
	*evidence_bytes = p->evidence_bytes;
	*analysis_seconds = (double)p->analysis_ns / 1e9;
}

void pipeline_close(struct pipeline **pp)
{
	struct pipeline *p = *pp;

	if (!p)
		return;
	pipeline_finish(p);
	if (p->conf.progress && p->last_progress_ns)
		fputc('\n', stderr);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		pool_pin(p, &p->cams[i], false);
		vg_pool_destroy(&p->cams[i].pool); /* every buffer is back, zeroed; this zeroes it all again */
		sws_freeContext(p->cams[i].sws);
		sem_destroy(&p->cams[i].slots);
	}
	sem_destroy(&p->ready);
	vg_counter_block_destroy(&p->counters);
	free(p->rings);
	free(p->latency_us);
	match_ctx_close(&p->ctx);
	match_db_close(&p->match); /* the watchlist, zeroed: the run's end purges it */
	store_close(&p->store);
	if (p->db && p->faces_scanned > p->scanned_reported)
		mgmt_deployment_add_scanned(p->db, p->conf.deployment, p->faces_scanned - p->scanned_reported);
	mgmt_db_close(&p->db);
#ifdef HAVE_VIGIL_GPU_CUDA
	gpu_cuda_faces_destroy(&p->gpu); /* zeroes the device's buffers first */
#endif
	vg_pool_destroy(&p->faces_pool);
	free(p->keep);
	free(p->res);
	gpu_model_close(&p->model);
	vg_pool_destroy(&p->crop_pool);
	free(p->alerts);
	free(p);
	*pp = NULL;
}
