/**
 * @file pipeline.h
 * The analysis pipeline, the analysis half of `vigild run`: decoded frames in, alerts out.
 * Per camera, frames are sampled at the analysis rate (RTP time) and copied into a biometric pool
 * (RGB for the CPU nets; the decoder's planes for the GPU's, or, from NVDEC, the decoder's own
 * frame on the device, held). The analysis thread takes frames from every camera in turn, up to a
 * batch (or a deadline), runs the batch through the face nets (gpu/ on the CPU, or gpu/cuda's
 * whole pipeline on the GPU), gates the faces on quality, matches them against the watchlist
 * (only inside an authorised, active deployment: DESIGN.md invariant 2, checked and audited
 * through mgmt; on the GPU where the nets are), and tracks them, so one person walking past raises
 * one alert per subject; the alert's face crop goes to the encrypted evidence store. Frames,
 * descriptors and crops of non-matches are zeroed as each batch retires (invariant 1), on the
 * host and on the device.
 */
#ifndef PIPELINE_H
#define PIPELINE_H

#include <stdbool.h>

#define PIPELINE_FUSION_MAX 8
#include <stdint.h>
#include <stdio.h>

#include "dp.h"

struct pipeline_conf {
	const char *models_dir;     /* face-api model folder */
	unsigned analysis_fps;      /* frames analysed per second per camera (default 10) */
	bool tiled;                 /* 512 tiles + the whole frame, for small faces (slower) */
	/* Matching runs when DEPLOYMENT is given (with STATE_DIR): with the watchlists its authorisation
	 * names, from vigild's custody by their seals (invariant 2). WATCHLIST_PATH, optional, may only
	 * name those custody files (comma-separated). No deployment: detect and count, match nothing. */
	const char *watchlist_path;
	const char *state_dir;      /* vigild's state (database, custody, evidence store) */
	int64_t deployment;         /* the deployment the run is authorised under; 0: no matching */
	double min_interocular_px;  /* quality gate (default 16) */
	double max_abs_yaw_deg;     /* (default 50) */
	double min_sharpness;       /* (default 5) */
	unsigned track_fusion;      /* 2..PIPELINE_FUSION_MAX (0 or 1: off): a track's best sightings so far (by crop
				       quality, this many) are fused into one descriptor (their mean, IJB-C
				       style template aggregation) that is matched as well when the sighting
				       alone does not match; 0: off (the default). Holds those descriptors for
				       the track's life (about a second after it is last seen), zeroed then. */
	bool progress;              /* a progress line on stderr once a second: frames, faces/s, alerts */
	unsigned queue_depth;       /* frames queued or in analysis per camera (default 4, at most 64) */
	/* Per camera (SDP order), both optional: the name alerts carry (default cam1, cam2, ...) and
	 * the camera's own analysis rate (default analysis_fps). Names must outlive the pipeline. */
	const char *camera_name[DP_MAX_CAMERAS];
	unsigned camera_fps[DP_MAX_CAMERAS];
	bool lossless;              /* recorded runs: a full queue makes decode wait, nothing is dropped */
	/* Where the face nets run: NULL or "cpu" (oneDNN), or "cuda" / "cuda-fp16" / "cuda-exact" on
	 * GPU 0 (gpu_cuda.h's modes; "cuda" is fp32 cuDNN): the whole face pipeline on the device,
	 * and the matcher's scan there too. A CUDA mode with no GPU, or a vigild built without nvcc,
	 * fails the open with one line. */
	const char *gpu;
	unsigned batch;             /* frames per batch of the nets, all cameras (default 1 on the CPU,
				       32 on the GPU; at most 64) */
	unsigned batch_deadline_ms; /* a batch waits at most this long for more frames (default 10) */
	unsigned gpu_max_width, gpu_max_height; /* the largest frame the GPU takes (default 3840x2160);
						   larger ones are dropped and counted */
};

struct pipeline_camera_counts {
	uint64_t frames_sampled, frames_dropped; /* sampled at the analysis rate; dropped when behind */
	uint64_t frames_analysed, faces_detected, faces_gated, faces_matched, tracks;
};

struct pipeline;

int pipeline_open(struct pipeline **out, const struct pipeline_conf *conf, const char *run_desc, char *err,
		  size_t errlen);
/*
 * A decoded frame of camera CAM, from dp's on_frame on that camera's decode thread (a camera stays
 * on one thread). Frames are sampled at the analysis rate, copied into the camera's biometric pool
 * (or, on the device, held) and queued for the analysis thread; when the camera's queue is full
 * the newest frame is dropped and counted (conf->lossless: the call waits instead). Never blocks
 * otherwise. A frame on a CUDA device only where pipeline_takes_device_frames() says so.
 */
void pipeline_frame(struct pipeline *p, unsigned cam, const struct dp_frame *f);
/* Whether frames NVDEC left on CUDA device DEVICE are read there, in place (the nets run on it). */
bool pipeline_takes_device_frames(const struct pipeline *p, int device);
/* The decode side is done (no more pipeline_frame calls): analyse what is queued and stop. */
void pipeline_finish(struct pipeline *p);
/* The report's "privacy" object: undumpable, and how many biometric pools (frames, crops) the
 * kernel marks no-dump and locked (/proc/self/smaps). */
void pipeline_write_privacy(const struct pipeline *p, FILE *f);
/* The analysis queues' gauges in the Prometheus text format (any thread, while it runs). */
void pipeline_write_gauges(struct pipeline *p, FILE *f);
/* The report's "analysis" stage: mode, queue depth, frames sampled and dropped, latency (after finish). */
void pipeline_write_stages(struct pipeline *p, FILE *f);
void pipeline_camera_counts(const struct pipeline *p, unsigned cam, struct pipeline_camera_counts *out);
/* Camera CAM's name: conf->camera_name[CAM], else "camN". */
void pipeline_camera_name(const struct pipeline *p, unsigned cam, char *buf, size_t len);
/* The report's "alerts" array, and its totals. */
void pipeline_write_alerts(const struct pipeline *p, FILE *f);
void pipeline_totals(const struct pipeline *p, uint64_t *faces_scanned, uint64_t *alerts, uint64_t *evidence_bytes,
		     double *analysis_seconds);
/* Close (finishing first if need be): purge the watchlist from memory, close the store (everything
 * acknowledged is durable). */
void pipeline_close(struct pipeline **p);

#endif /* PIPELINE_H */
