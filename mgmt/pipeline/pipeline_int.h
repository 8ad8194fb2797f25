/*
 * The analysis pipeline's private layout (not for other components; tests of its decisions
 * include it). Threads: a camera's decode side belongs to that camera's decode thread, its
 * analysis side and everything else here to the analysis thread; they meet only through each
 * camera's ring and slots semaphore (pipeline_intake.c).
 */
#ifndef PIPELINE_INT_H
#define PIPELINE_INT_H

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
#define PIPELINE_WATCHLISTS_MAX 64 /* watchlists one deployment may bind (mgmt/ctl allows 64) */
#define MAX_TRACKS 64
#define TRACK_SUBJECTS_MAX 4 /* subjects one track may alert for (a crowd merged into one box) */
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
	char alerted[TRACK_SUBJECTS_MAX][MATCH_SUBJECT_MAX + 1];
	unsigned alert_idx[TRACK_SUBJECTS_MAX];  /* index into the pipeline's alerts of each alerted subject */
	double best_quality[TRACK_SUBJECTS_MAX]; /* quality of the crop each alert carries */
	unsigned n_alerted;
	bool live;
	struct track_template *tmpl; /* track fusion's template, or NULL */
};

/*
 * A live track's template for fusion (pipeline_conf.track_fusion): its best K sightings'
 * descriptors (D floats each) by crop quality. Biometric: one buffer of the pipeline's templates
 * pool (no-dump, locked), taken with the track's first face and put back, zeroed, when it is over.
 */
struct track_template {
	unsigned n, k, d;
	double quality[PIPELINE_FUSION_MAX];
	float desc[]; /* k x d */
};
#define TEMPLATES_MAX 1024 /* live tracks with a template, all cameras: beyond, a track goes unfused (counted) */

/* A camera's sampling clock (decode thread): RTP time unwrapped, the last frame sampled. */
struct pipeline_sampler {
	bool have_first;
	uint32_t last_ts;
	int64_t in_pts;        /* unwrapped RTP time of the newest decoded frame */
	int64_t last_analysed; /* pts of the last frame sampled for analysis */
};

/* A camera's tracks: faces followed from frame to frame (analysis thread). */
struct pipeline_tracks {
	struct track t[MAX_TRACKS];
	uint64_t next_id;  /* the last track id given */
	uint64_t started;  /* tracks started (the report's "tracks") */
};

/*
 * One camera. The decode side (sampling, colour conversion, queueing) runs on the camera's decode
 * thread alone; the analysis side (tracks, counts, the frame being analysed) on the analysis
 * thread alone. They meet only through QUEUE and the SLOTS semaphore, which bounds what is queued
 * or being analysed to the pipeline's queue depth (DESIGN.md: no queue grows without bound).
 */
struct camera {
	/* decode side */
	struct pipeline_sampler clock;
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
	struct pipeline_tracks tracks;
	struct pipeline_camera_counts n;
};

struct alert {
	unsigned cam;
	int64_t pts;
	uint64_t track;
	char subject[MATCH_SUBJECT_MAX + 1];
	uint32_t watchlist;
	const char *metric; /* "l2", "cosine", or either with "-track" (a static string) */
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
	/* The watchlists matched against, from vigild's custody, each with the seal the deployment's
	 * authorisation bound (alerts name it). */
	struct pipeline_watchlist {
		uint32_t id;
		char seal[65];
	} watchlists[PIPELINE_WATCHLISTS_MAX];
	unsigned n_watchlists;
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
	struct vg_pool *templates_pool; /* TEMPLATES_MAX track templates with track fusion, else NULL */
	float *fused_q;           /* a frame's fused templates to match (MAX_FACES x d), biometric */
	struct vg_pool *fused_pool;
	struct match_result *fused_res; /* their matches (MAX_FACES) */
	uint64_t fused_matches;   /* sightings matched only through their track's fused template */
	uint64_t unfused_tracks;  /* tracks left without a template: the pool was empty */
	unsigned d;               /* the model's descriptor size */
	enum match_metric metric; /* and metric */
	uint64_t outcomes_ns;  /* when review outcomes were last applied to the store */
	struct vg_counter_block *counters;
	struct vg_counter_row *row; /* the analysis thread's */
	uint8_t *crop; /* CROP_MAX^2 * 3, biometric */
	struct vg_pool *crop_pool;
};

/* ---- shared between the pipeline's files (each says which thread calls it) -------------------- */

/* pipeline.c */
void pipeline_camera_label(const struct pipeline *p, unsigned cam, char *buf, size_t len); /* conf's name, or camN */
float pipeline_threshold_of(const struct pipeline *p, uint32_t watchlist);
/* The seal of loaded watchlist ID ("" if it is not loaded). */
const char *pipeline_watchlist_seal(const struct pipeline *p, uint32_t id);
/* pipeline_custody.c: the deployment's watchlists from vigild's custody, by the seals its
 * authorisation bound, loaded into the matcher; audited. 0, or -errno with ERR. */
int pipeline_custody_load(struct pipeline *p, struct mgmt_db *db, const char *run_desc, char *err, size_t errlen);
/* pipeline_intake.c (decode threads) */
void pipeline_pool_pin(struct pipeline *p, struct camera *c, bool pin);
/*
 * The drop policy: take a free frame buffer from SLOTS; in a LOSSLESS (recorded) run wait for
 * one, adding the wait to *WAIT_NS, else give up at once: the caller drops the newest frame and
 * counts it, and the decode thread never waits for the analysis.
 */
bool pipeline_slot_take(sem_t *slots, bool lossless, uint64_t *wait_ns /* IN/OUT */);
/* Whether the frame at RTP time RTP_TS is due for analysis at FPS frames a second (camera clock). */
bool pipeline_sample_due(struct pipeline_sampler *s, uint32_t rtp_ts, unsigned fps);
/* pipeline_batch.c (the analysis thread) */
void *pipeline_analysis_main(void *arg);
/* pipeline_alert.c (the analysis thread) */
int pipeline_frame_results(struct pipeline *p, unsigned i, int k0, int nkeep, bool matched);
/* pipeline_track.c: pure decisions, no I/O, no clock (unit-tested on their own) */
/* The track BOX continues in the frame at PTS, or a new one (NULL when all MAX_TRACKS are live). */
struct track *pipeline_track_face(struct pipeline_tracks *tr, int64_t pts, const double box[4]);
/* The quality gate: faces too small, too turned or too blurred are never matched. */
bool pipeline_face_passes_gate(const struct pipeline_conf *conf, const struct gpu_quality *q);
/* One number for "a better crop to show a reviewer": larger, sharper, more frontal. */
double pipeline_crop_quality(const struct gpu_face *f);
/* Whether a crop of QUALITY should replace the evidence of quality BEST (a quarter better). */
bool pipeline_crop_better(double quality, double best);
enum pipeline_sighting {
	PIPELINE_SIGHTING_NEW,        /* the subject's first match on this track: raise an alert */
	PIPELINE_SIGHTING_ALERTED,    /* alerted already (*SLOT): at most a better crop, never a second alert */
	PIPELINE_SIGHTING_TRACK_FULL, /* the track alerted TRACK_SUBJECTS_MAX subjects already */
};
enum pipeline_sighting pipeline_track_sighting(const struct track *t, const char *subject, unsigned *slot /* OUT */);
/* Bytes of a template of K sightings of D floats. */
size_t pipeline_template_size(unsigned k, unsigned d);
/* A zeroed buffer of that size made an empty template. */
void pipeline_template_init(struct track_template *tt, unsigned k, unsigned d);
/* Keep a sighting (DESC, crop QUALITY) in TT if it is among its best K so far. */
void pipeline_template_add(struct track_template *tt, const float *desc, double quality);
/* TT's fused descriptor into OUT (d floats: the mean of its sightings, match_eval_fuse; unit length
 * under cosine, METRIC 1); returns how many were fused. */
unsigned pipeline_template_fuse(const struct track_template *tt, int metric, float *out);
/* Record T's alert for SUBJECT: ALERT_INDEX into the pipeline's alerts, its crop's QUALITY. */
void pipeline_track_alerted(struct track *t, const char *subject, unsigned alert_index, double quality);

#endif /* PIPELINE_INT_H */
