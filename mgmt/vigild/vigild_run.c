/*
 * `vigild run --pcap FILE[,FILE...] [--sdp FILE] --report report.json [--until-eof]
 *  [--framemd5 FILE] [--decode cpu|cuda[:N]] [--models DIR [--watchlist FILE --state-dir DIR
 *  --deployment ID]]`: the pipeline over recorded captures (DESIGN.md, "Contracts"): the
 * dataplane's stages (receive, RTP, depacketize, decode in software or on NVDEC), then with
 * --models (or $VIGIL_MODELS) the analysis (vigild_pipeline.c): faces detected and counted, and
 * with a watchlist matched inside an authorised deployment.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dp.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_counter.h"
#include "vg_pool.h"
#include "vg_config.h"
#include "vg_file.h"
#include "vigild_int.h"
#include "vigild_run_int.h"
#ifdef HAVE_VIGIL_MGMT_PIPELINE
#include "pipeline.h"
#else
#include "vigild_no_pipeline.h"
#endif


static _Atomic bool stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	atomic_store(&stop_flag, true);
}

struct md5_line {
	unsigned stream;
	int64_t pts;
	int size;
	char hex[33];
};

struct md5_log {
	pthread_mutex_t lock; /* frames come from the decode workers */
	struct pipeline *pipeline; /* NULL: no analysis */
	bool md5;
	struct md5_line *lines;
	size_t n, cap;
	bool have_first[DP_MAX_CAMERAS];
	int64_t first[DP_MAX_CAMERAS], ext[DP_MAX_CAMERAS];
	uint32_t last[DP_MAX_CAMERAS];
	int w[DP_MAX_CAMERAS], h[DP_MAX_CAMERAS];
	int failed;
	void *host[DP_MAX_CAMERAS];        /* per camera: its device frames downloaded (analyse_frame) */
	_Atomic uint64_t download_errors;  /* device frames not analysed: the download failed */
};

/* One frame's hash line; LOG's lock held (frames come from the decode workers). */
static void log_frame(struct md5_log *log, const struct dp_frame *f, unsigned cam)
{
	struct md5_line l = { .stream = cam };

	if (log->failed)
		return;
	if (!log->have_first[cam]) {
		log->have_first[cam] = true;
		log->ext[cam] = 0;
		log->w[cam] = f->width;
		log->h[cam] = f->height;
	} else {
		log->ext[cam] += (int32_t)(f->ts - log->last[cam]);
	}
	log->last[cam] = f->ts;
	l.pts = log->ext[cam];
	if (dp_frame_md5(f, l.hex, &l.size) < 0) {
		log->failed = -ENOMEM;
		return;
	}
	if (log->n == log->cap) {
		size_t cap = log->cap ? log->cap * 2 : 1024;
		struct md5_line *p = realloc(log->lines, cap * sizeof(*p));
		if (!p) {
			log->failed = -ENOMEM;
			return;
		}
		log->lines = p;
		log->cap = cap;
	}
	log->lines[log->n++] = l;
}

/*
 * The glue between decode and the analysis for device frames (--decode cuda). With the nets on the
 * same GPU (--gpu cuda...) the analysis reads NVDEC's frames there, in place; otherwise a frame
 * NVDEC left on the device is downloaded here (NV12, into the camera's own reusable host frame: a
 * camera stays on one decode thread) and handed on as a host frame.
 */
static void analyse_frame(struct md5_log *log, unsigned cam, const struct dp_frame *f)
{
	struct dp_frame host;

	if (f->on_device && !pipeline_takes_device_frames(log->pipeline, f->cuda_device)) {
		if (dp_frame_download(f, &log->host[cam], &host) < 0) {
			atomic_fetch_add_explicit(&log->download_errors, 1, memory_order_relaxed);
			return;
		}
		f = &host;
	}
	pipeline_frame(log->pipeline, cam, f);
}

static void on_frame(void *arg, const struct dp_frame *f)
{
	struct md5_log *log = arg;
	unsigned cam = dp_run_current_camera();

	if (cam >= DP_MAX_CAMERAS)
		return;
	if (log->md5) {
		pthread_mutex_lock(&log->lock);
		log_frame(log, f, cam);
		pthread_mutex_unlock(&log->lock);
	}
	if (log->pipeline)
		analyse_frame(log, cam, f);
}

/* ffmpeg's framemd5 (version 2) layout, so the two files diff line by line but for timestamps. */
static int write_framemd5(const char *path, const struct md5_log *log, unsigned n_cams)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "#format: frame checksums\n#version: 2\n#hash: MD5\n");
	for (unsigned i = 0; i < n_cams; i++) {
		fprintf(f, "#tb %u: 1/90000\n#media_type %u: video\n#codec_id %u: rawvideo\n", i, i, i);
		fprintf(f, "#dimensions %u: %dx%d\n#sar %u: 1/1\n", i, log->w[i], log->h[i], i);
	}
	fprintf(f, "#stream#, dts,        pts, duration,     size, hash\n");
	for (size_t i = 0; i < log->n; i++) {
		const struct md5_line *l = &log->lines[i];
		fprintf(f, "%u, %10" PRId64 ", %10" PRId64 ", %8d, %8d, %s\n", l->stream, l->pts, l->pts, 1, l->size, l->hex);
	}
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Cameras set up over RTSP: their sessions, kept alive from a thread of their own. */
struct rtsp_set {
	struct dp_rtsp *s[MAX_RTSP];
	struct dp_rtsp_conf conf[MAX_RTSP];
	unsigned n;
	_Atomic uint64_t reconnects;
	int reserved[2 * DP_SDP_MAX_MEDIA]; /* UDP sockets holding the client ports (no ICMP unreachable) */
	unsigned n_reserved;
	pthread_t keepalive;
	bool running;
};
static struct rtsp_set rtsp; /* the run's RTSP sessions: one run per process */

static int reserve_port(struct rtsp_set *set, unsigned port)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int rc = -errno;
		close(fd);
		return rc;
	}
	set->reserved[set->n_reserved++] = fd;
	return 0;
}

static void *keepalive_main(void *arg)
{
	struct rtsp_set *set = arg;

	unsigned attempt[MAX_RTSP] = { 0 };
	uint64_t retry_at[MAX_RTSP] = { 0 };

	while (!atomic_load(&stop_flag)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		for (unsigned i = 0; i < set->n; i++) {
			char err[256];
			if (set->s[i] && (dp_rtsp_check(set->s[i]) < 0 || dp_rtsp_keepalive(set->s[i], now) < 0)) {
				/* The camera reset: open a new session on the same client ports, with back-off. */
				dp_rtsp_close(&set->s[i]);
				attempt[i] = 0;
				retry_at[i] = now + dp_rtsp_backoff_ms(0);
			}
			if (!set->s[i] && now >= retry_at[i]) {
				if (dp_rtsp_open(&set->s[i], &set->conf[i], err, sizeof(err)) == 0)
					atomic_fetch_add(&set->reconnects, 1);
				else
					retry_at[i] = now + dp_rtsp_backoff_ms(++attempt[i]);
			}
		}
		usleep(100000);
	}
	return NULL;
}

/* OPTIONS..PLAY on each URL (a few tries with back-off), into one SDP whose ports are ours. */
static int rtsp_start(struct rtsp_set *set, const struct rtsp_camera *cams, unsigned n, unsigned base_port,
		      struct dp_sdp *sdp, unsigned *media_camera /* OUT: camera of each SDP medium */, char *err,
		      size_t errlen)
{
	memset(sdp, 0, sizeof(*sdp));
	for (unsigned i = 0; i < n; i++) {
		set->conf[i] = (struct dp_rtsp_conf){ .url = cams[i].url, .user = cams[i].user, .password = cams[i].password,
						      .client_port = (uint16_t)(base_port + 100 * i) };
		int rc = -EIO;
		for (unsigned attempt = 0; attempt < 4; attempt++) {
			rc = dp_rtsp_open(&set->s[set->n], &set->conf[i], err, errlen);
			if (rc == 0 || rc == -EACCES || rc == -EINVAL)
				break;
			usleep(dp_rtsp_backoff_ms(attempt) * 1000);
		}
		if (rc < 0)
			return rc;
		const struct dp_sdp *got = dp_rtsp_sdp(set->s[set->n++]);
		for (unsigned k = 0; k < got->n_media && sdp->n_media < DP_SDP_MAX_MEDIA; k++) {
			media_camera[sdp->n_media] = i;
			sdp->media[sdp->n_media++] = got->media[k];
			if (reserve_port(set, got->media[k].port) < 0 || reserve_port(set, got->media[k].port + 1u) < 0)
				return vg_errf(err, errlen, -EADDRINUSE, "client port %u is taken", got->media[k].port);
		}
	}
	set->running = pthread_create(&set->keepalive, NULL, keepalive_main, set) == 0;
	return 0;
}

static void rtsp_stop(struct rtsp_set *set)
{
	if (set->running) {
		atomic_store(&stop_flag, true);
		pthread_join(set->keepalive, NULL);
		set->running = false;
	}
	for (unsigned i = 0; i < set->n; i++)
		dp_rtsp_close(&set->s[i]); /* TEARDOWN */
	for (unsigned i = 0; i < set->n_reserved; i++)
		close(set->reserved[i]);
	set->n = set->n_reserved = 0;
}

/*
 * --metrics-file PATH: every 2 s, the run's counters (the dataplane's, the analysis stage's) and
 * the analysis queues' gauges in the Prometheus text format, written whole and renamed into
 * place, so that vigild serve's /metrics can show the live pipeline it runs as a child.
 */
#define METRICS_EVERY_MS 2000
#define METRICS_BUF (256 * 1024)

struct metrics_writer {
	const char *path;
	struct pipeline *pipeline;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	bool stop;
};

static void metrics_write(struct metrics_writer *mw, char *buf)
{
	char tmp[4096];
	int len = vg_counters_format_prometheus(buf, METRICS_BUF);
	FILE *f;

	if (len < 0 || snprintf(tmp, sizeof(tmp), "%s.tmp", mw->path) >= (int)sizeof(tmp) || !(f = fopen(tmp, "w")))
		return;
	fwrite(buf, 1, (size_t)len, f);
	if (mw->pipeline)
		pipeline_write_gauges(mw->pipeline, f);
	if (fclose(f) == 0)
		rename(tmp, mw->path);
	else
		remove(tmp);
}

static void *metrics_main(void *arg)
{
	struct metrics_writer *mw = arg;
	char *buf = malloc(METRICS_BUF);

	pthread_mutex_lock(&mw->lock);
	while (buf && !mw->stop) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += METRICS_EVERY_MS / 1000;
		pthread_cond_timedwait(&mw->cv, &mw->lock, &until);
		pthread_mutex_unlock(&mw->lock);
		metrics_write(mw, buf);
		pthread_mutex_lock(&mw->lock);
	}
	pthread_mutex_unlock(&mw->lock);
	free(buf);
	return NULL;
}

static void metrics_stop(struct metrics_writer *mw)
{
	if (!mw->running)
		return;
	pthread_mutex_lock(&mw->lock);
	mw->stop = true;
	pthread_cond_signal(&mw->cv);
	pthread_mutex_unlock(&mw->lock);
	pthread_join(mw->thread, NULL);
	mw->running = false;
}

/*
 * The inputs a run receives: the capture files or interfaces, and the streams' descriptions from
 * an SDP file or from the cameras themselves over RTSP (which then name the cameras and their
 * rates for the analysis). 0, or 1 after one line on stderr.
 */
static int run_inputs(struct run_args *a, struct run_inputs *in, char *err, size_t errlen)
{
	in->pcap_list = strdup(a->pcap ? a->pcap : "");
	in->iface_list = strdup(a->iface ? a->iface : "");
	if (!in->pcap_list || !in->iface_list)
		return 1;
	if (run_split_list(in->iface_list, in->ifaces, VG_ARRAY_SIZE(in->ifaces), &a->conf.n_ifaces, "interfaces") < 0 ||
	    run_split_list(in->pcap_list, in->pcaps, VG_ARRAY_SIZE(in->pcaps), &a->conf.n_pcaps, "captures") < 0)
		return 1;
	a->conf.ifaces = in->ifaces;
	a->conf.pcaps = in->pcaps;
	if (a->sdp_path) {
		uint8_t *text;
		size_t len = 0;
		in->sdp = malloc(sizeof(*in->sdp));
		if (!in->sdp)
			return 1;
		int r = vg_file_read(a->sdp_path, SDP_FILE_MAX, &text, &len);
		if (r < 0) {
			fprintf(stderr, "vigild run: cannot read %s: %s\n", a->sdp_path, vg_strerror(r));
			return 1;
		}
		in->sdp_text = (char *)text;
		if (dp_sdp_parse(in->sdp_text, len, in->sdp, err, errlen) < 0) {
			fprintf(stderr, "vigild run: %s: %s\n", a->sdp_path, err);
			return 1;
		}
		if (in->sdp->n_media == 0) {
			fprintf(stderr, "vigild run: %s: no H.264, H.265 or JPEG video stream\n", a->sdp_path);
			return 1;
		}
		a->conf.sdp = in->sdp;
	}
	if (a->n_rtsp) {
		unsigned media_camera[DP_SDP_MAX_MEDIA];

		if (a->sdp_path || !a->iface) {
			fprintf(stderr, "vigild run: --rtsp takes the SDP from the cameras and needs --iface\n");
			return 1;
		}
		in->sdp = malloc(sizeof(*in->sdp));
		if (!in->sdp)
			return 1;
		if (rtsp_start(&rtsp, a->rtsp_cams, a->n_rtsp, a->rtsp_port, in->sdp, media_camera, err, errlen) < 0) {
			fprintf(stderr, "vigild run: rtsp: %s\n", err); /* names host:port only, never credentials */
			return 1;
		}
		a->conf.sdp = in->sdp;
		/* A camera's name and rate go with its first stream (a second stream of one camera is rare). */
		for (unsigned k = 0; k < in->sdp->n_media; k++) {
			const struct rtsp_camera *cam = &a->rtsp_cams[media_camera[k]];
			bool first = k == 0 || media_camera[k - 1] != media_camera[k];
			a->pconf.camera_name[k] = first ? cam->name : NULL;
			a->pconf.camera_fps[k] = cam->fps;
		}
	}
	return 0;
}

/* After the dataplane stopped: the analysis drained, then report.json and the framemd5 file. */
static int run_outputs(struct run_args *a, struct dp_run_report *report, struct pipeline *pipeline,
		       struct md5_log *log, unsigned rtsp_sessions, uint64_t rtsp_reconnects)
{
	int r;

	if (log->failed) {
		fprintf(stderr, "vigild run: framemd5: %s\n", vg_strerror(log->failed));
		return 1;
	}
	if (pipeline)
		pipeline_finish(pipeline); /* what is queued is analysed before the report counts it */
	for (unsigned i = 0; i < report->n_cameras; i++) /* one line per camera NVDEC did not take */
		if (report->cameras[i].decode_fallback[0])
			fprintf(stderr, "vigild run: %s: decoded in software, not NVDEC: %s\n",
				a->pconf.camera_name[i] ? a->pconf.camera_name[i] : report->cameras[i].id,
				report->cameras[i].decode_fallback);
	struct run_report_extra extra = { rtsp_sessions, rtsp_reconnects, atomic_load(&log->download_errors) };
	r = vigild_write_report(a->report_path, report, &extra, pipeline, a->pconf.camera_name);
	if (r < 0) {
		fprintf(stderr, "vigild run: cannot write %s: %s\n", a->report_path, vg_strerror(r));
		return 1;
	}
	if (a->md5_path) {
		r = write_framemd5(a->md5_path, log, report->n_cameras);
		if (r < 0) {
			fprintf(stderr, "vigild run: cannot write %s: %s\n", a->md5_path, vg_strerror(r));
			return 1;
		}
	}
	return 0;
}

int vigild_run_main(int argc, char **argv)
{
	struct run_args a;
	struct run_inputs in = { 0 };
	char err[512] = "";
	struct dp_run_report *report = NULL;
	struct md5_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct metrics_writer metrics = { .lock = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };
	struct pipeline *pipeline = NULL;
	int rc = vigild_run_args(argc, argv, &a);

	if (rc != RUN_ARGS_OK)
		return rc == RUN_ARGS_HELP ? 0 : 2;
	rc = 1;
	if (run_inputs(&a, &in, err, sizeof(err)) != 0)
		goto out;
	if ((a.pconf.watchlist_path || a.pconf.deployment > 0) && (!a.pconf.models_dir || !*a.pconf.models_dir)) {
		fprintf(stderr, "vigild run: matching needs the face model (--models DIR or $VIGIL_MODELS)\n");
		goto out;
	}
	/* A capture file is its own buffer: its run waits for the analysis and analyses every sampled
	 * frame, unless asked to behave as live cameras do (the newest frame dropped when behind). */
	a.pconf.lossless = !a.iface && !a.drop_when_behind;
	if (a.pconf.models_dir && *a.pconf.models_dir) {
		char desc[600];
		snprintf(desc, sizeof(desc), "vigild run --%s %s", a.pcap ? "pcap" : "iface", a.pcap ? a.pcap : a.iface);
		if (pipeline_open(&pipeline, &a.pconf, desc, err, sizeof(err)) < 0) {
			fprintf(stderr, "vigild run: %s\n", err);
			goto out;
		}
		log.pipeline = pipeline;
	}
	a.conf.frames_held = a.pconf.queue_depth; /* what the analysis may hold per camera; 0: its default, 4 */
	log.md5 = a.md5_path != NULL;
	if (a.md5_path || pipeline) {
		a.conf.on_frame = on_frame;
		a.conf.on_frame_arg = &log;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	a.conf.stop = &stop_flag;
	report = calloc(1, sizeof(*report));
	if (!report)
		goto out;
	metrics.path = a.metrics_path;
	metrics.pipeline = pipeline;
	if (metrics.path)
		metrics.running = pthread_create(&metrics.thread, NULL, metrics_main, &metrics) == 0;
	int r = dp_run_pcap(&a.conf, report, err, sizeof(err));
	metrics_stop(&metrics); /* before the pipeline and the dataplane's counters go */
	unsigned rtsp_sessions = rtsp.n;
	uint64_t rtsp_reconnects = atomic_load(&rtsp.reconnects);
	rtsp_stop(&rtsp);
	if (r < 0) {
		fprintf(stderr, "vigild run: %s\n", err[0] ? err : vg_strerror(r));
		goto out;
	}
	rc = run_outputs(&a, report, pipeline, &log, rtsp_sessions, rtsp_reconnects);
out:
	metrics_stop(&metrics);
	if (a.rtsp_file_text) /* it held credentials */
		vg_scrub(a.rtsp_file_text, strlen(a.rtsp_file_text));
	free(a.rtsp_file_text);
	pipeline_close(&pipeline);
	rtsp_stop(&rtsp);
	free(log.lines);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		dp_frame_host_free(&log.host[i]);
	free(report);
	free(in.sdp);
	free(in.sdp_text);
	free(in.pcap_list);
	free(in.iface_list);
	return rc;
}
