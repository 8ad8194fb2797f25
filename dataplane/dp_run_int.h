/*
 * The receive loop's private layout: a run and its cameras, shared by dp_run.c (EAL, ports, the
 * RX loop, one frame through the graph) and dp_cam.c (a camera from its flow to decoded frames).
 * Apart from dp_int.h so that the pure parsers never see the loop's state.
 *
 * Threads: a run and its cameras belong to the thread in dp_run_pcap(), the RX lcore, but for
 * what a decode worker touches (dp_cam.c: the camera's decoder and its report's frame fields).
 */
#ifndef DP_RUN_INT_H
#define DP_RUN_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dp.h"

struct rte_ring;
struct vg_counter_row;
struct vg_pool;

struct dp_cam {
	struct dp_camera_report *rep;
	struct dp_reorder *ro;
	struct dp_depay *depay;
	struct dp_decoder *dec;
	uint8_t pt;
	bool ssrc_known;
	int next_same_port; /* the next camera on this UDP port (no-SDP mode), or -1 */
	bool have_sr;
	struct dp_rtcp_sr sr; /* the last sender report: wall clock at an RTP timestamp */
	uint32_t clock_rate;
	unsigned index;
	struct dp_run *run;
};

#define MAX_WORKERS 16

struct dp_run {
	const struct dp_run_conf *conf;
	struct dp_run_report *rep;
	struct dp_cam cams[DP_MAX_CAMERAS];
	unsigned n_cams;
	int16_t by_port[65536]; /* first camera on a destination port, -1 if none */
	struct vg_counter_row *ctr;
	/* Decode workers (conf->decode_workers > 0): camera i decodes on worker i % n, in order. */
	unsigned n_workers;
	pthread_t workers[MAX_WORKERS];
	struct rte_ring *rings[MAX_WORKERS];
	struct vg_pool *au_pool;
	atomic_bool workers_stop;
};

/* Add a camera (an SDP stream, or a new (port, SSRC) without one). -ENOSPC past DP_MAX_CAMERAS. */
int dp_cam_add(struct dp_run *run, enum dp_codec codec, uint16_t port, uint8_t pt, const uint8_t *params,
	       size_t params_len, char *err, size_t errlen);
/* Hand what the reorder buffer releases (everything if FLUSH) to the depacketizer. */
void dp_cam_drain(struct dp_cam *c, bool flush);
/* The flow table: the camera for an RTP packet to PORT from SSRC, or NULL. May add one (no SDP). */
struct dp_cam *dp_cam_find(struct dp_run *run, uint16_t port, uint32_t ssrc, uint8_t pt);
/* Decode what the camera's decoder still holds. After dp_cam_workers_stop(). */
void dp_cam_decode_flush(struct dp_cam *c);
/* Fold the camera's reorder and decode statistics into REPORT, then free what it holds. */
void dp_cam_close(struct dp_cam *c, struct dp_run_report *report);

/* Start N decode workers (conf->decode_workers); stop joins what started, even on an error. */
int dp_cam_workers_start(struct dp_run *run, unsigned n, char *err, size_t errlen);
void dp_cam_workers_stop(struct dp_run *run);

#endif /* DP_RUN_INT_H */
