/**
 * @file mgmt_daemon.h
 * vigild's management loop: the process vigild serve runs. It opens the state (mgmt.h) and the
 * control socket (mgmt_ctl.h), serves requests, ends deployments whose window closed (purging
 * their watchlists), supervises the live pipeline (a `vigild run` child over the cameras while a
 * deployment is active) and exports metrics.
 *
 * Threads: mgmt_daemon_run() takes the calling thread and returns when vigild stops; the metrics
 * endpoint answers on libmicrohttpd's own thread, reading only atomics.
 */
#ifndef MGMT_DAEMON_H
#define MGMT_DAEMON_H

#include <stdint.h>

#include "mgmt.h"
#include "vg_conf.h"

/* vigild's own settings (the config file's "vigild." lines); the stages add tables of their own. */
struct mgmt_daemon_conf {
	char state_dir[256];      /* the database and its audit anchor live here (0700) */
	char socket_path[108];    /* the control socket */
	char people[8192];        /* uid -> person and roles: see mgmt_people_parse() */
	char metrics_listen[64];  /* "ADDR:PORT" for /metrics and /health; "" turns it off */
	char log_levels[256];     /* as vg_log_set_levels() */
	char capture_iface[32];   /* where cameras' RTP arrives (net_af_packet); "" turns live capture off */
	char models_dir[256];     /* the face model's weights (face-api-1.7.15/model) */
	int64_t capture_rtsp_port; /* first client port of RTSP cameras' RTP (camera i: + 100 i) */
	int capture_nets;         /* where the capture's face pipeline runs: mgmt_capture_nets[] */
	int capture_decode;       /* how it decodes: mgmt_capture_decode[] */
	int64_t max_window_hours; /* the longest deployment window one authorisation may cover */
	int64_t capture_batch;    /* frames of all cameras per batch of the nets (0: vigild run's default) */
	int64_t track_fusion;     /* vigild run --track-fusion (0: off) */
	double max_expected_false_alerts; /* per 1,000 faces, the policy's limit on a request (0: none) */
	/* Not a setting: what the program running the loop lends it (set after the file is read). */
	mgmt_probe_fn *probe;     /* camera.probe; NULL: not in this build */
	mgmt_outcome_fn *outcome; /* review outcomes to the evidence store, after each review and every 30 s; NULL: none */
	void *outcome_arg;
};

extern const struct vg_conf_table mgmt_daemon_conf_table;
/* The values of vigild.nets ("cpu", "cuda", "cuda-fp16", "cuda-exact": vigild run --gpu) and
 * vigild.decode ("cpu", "cuda": --decode), NULL-terminated. */
extern const char *const mgmt_capture_nets[];
extern const char *const mgmt_capture_decode[];

/**
 * Run vigild's management loop until SIGTERM or SIGINT: make the process undumpable, keep only
 * the capabilities the stages need, open the database and the control socket, serve requests,
 * end deployments whose window closed (purging their watchlists), export metrics, tell systemd
 * READY=1 (Type=notify) once serving. SIGHUP re-reads CONFIG_PATH (NULL: no reload) and applies
 * what may change at run time (people, log levels), all or nothing. Returns 0 after a clean stop,
 * or -errno with a one-line reason in ERR when it could not start.
 */
int mgmt_daemon_run(const struct mgmt_daemon_conf *conf, const char *config_path, char *err, size_t errlen);

#endif /* MGMT_DAEMON_H */
