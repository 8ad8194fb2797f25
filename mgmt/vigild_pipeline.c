/* The analysis half of `vigild run` (vigild_pipeline.h). */
#include <errno.h>
#include <inttypes.h>
#include <libavutil/frame.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gpu.h"
#include "match.h"
#include "mgmt.h"
#include "store.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_pool.h"
#include "vigild_pipeline.h"

#define MAX_FACES 32
#define MAX_TRACKS 64
#define TRACK_IOU 0.3
#define TRACK_TTL_S 1.0 /* a track not seen for this long (RTP time) is over */
#define MAX_ALERTS 4096
#define CROP_MAX 640

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

struct camera {
	bool have_first;
	uint32_t last_ts;
	int64_t pts;           /* unwrapped RTP time of the current frame */
	int64_t last_analysed; /* pts of the last analysed frame */
	int w, h, fmt;
	struct SwsContext *sws;
	struct vg_pool *rgb_pool; /* one frame, biometric */
	uint8_t *rgb;
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
	pthread_mutex_t lock;
	struct gpu_model *model;
	struct match_db *match;
	struct match_ctx *ctx;
	struct store *store;
	struct mgmt_db *db; /* with a watchlist: alerts are recorded here for review */
	uint64_t scanned_reported;
	struct camera cams[DP_MAX_CAMERAS];
	struct gpu_face faces[MAX_FACES];
	struct alert *alerts;
	unsigned n_alerts;
	uint64_t faces_scanned, evidence_bytes, analysis_ns;
	uint64_t started_ns, last_progress_ns;
	uint64_t better_crops; /* alerts whose evidence was replaced by a better crop of the track */
	uint8_t *crop; /* CROP_MAX^2 * 3, biometric */
	struct vg_pool *crop_pool;
};

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
	rc = match_load_file(p->match, p->conf.watchlist_path, err, errlen);
	if (rc < 0)
		return rc;
	rc = match_ctx_open(&p->ctx, p->match, 1, MAX_FACES);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "matcher: %s", vg_strerror(rc));

	struct store_conf sc = { 0 };
	char dir[512], key[512];
	snprintf(dir, sizeof(dir), "%s/evidence", p->conf.state_dir);
	snprintf(key, sizeof(key), "%s/appliance.key", p->conf.state_dir);
	sc.dir = dir;
	sc.appliance_key_path = key;
	sc.create_appliance_key = true;
	rc = store_open(&p->store, &sc, err, errlen);
	if (rc < 0)
		return rc;
	rc = store_deployment_open(p->store, (uint64_t)p->conf.deployment);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "evidence store: deployment %" PRId64 ": %s", p->conf.deployment,
			       vg_strerror(rc));
	return 0;
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
	pthread_mutex_init(&p->lock, NULL);
	p->alerts = calloc(MAX_ALERTS, sizeof(*p->alerts));
	if (!p->alerts) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_close;
	}
	rc = vg_pool_create(&p->crop_pool, "crop", (size_t)CROP_MAX * CROP_MAX * 3, 1, VG_POOL_BIOMETRIC);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "crop pool: %s", vg_strerror(rc));
		goto out_close;
	}
	p->crop = vg_pool_get(p->crop_pool);
	rc = gpu_model_open(&p->model, conf->models_dir, err, errlen);
	if (rc < 0)
		goto out_close;
	if (conf->watchlist_path) {
		rc = authorise_and_load(p, run_desc, err, errlen);
		if (rc < 0)
			goto out_close;
	}
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
	snprintf(sa->camera, sizeof(sa->camera), "cam%u", cam + 1);
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
	snprintf(ma.camera, sizeof(ma.camera), "cam%u", cam + 1);
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

static void analyse(struct pipeline *p, unsigned cam, struct camera *c)
{
	struct match_result res[MAX_FACES];
	float q[MAX_FACES][GPU_DESCRIPTOR_DIM];
	int keep[MAX_FACES];
	int n, nq = 0;

	n = p->conf.tiled ? gpu_faces_run_tiled(p->model, c->rgb, (uint32_t)c->w, (uint32_t)c->h, 192, p->faces, MAX_FACES)
			  : gpu_faces_run(p->model, c->rgb, (uint32_t)c->w, (uint32_t)c->h, p->faces, MAX_FACES);
	if (n <= 0)
		return;
	c->n.faces_detected += (uint64_t)n;
	p->faces_scanned += (uint64_t)n;
	for (int i = 0; i < n; i++) {
		const struct gpu_quality *g = &p->faces[i].quality;

		if (g->interocular_px < p->conf.min_interocular_px || fabs(g->yaw_deg) > p->conf.max_abs_yaw_deg ||
		    g->sharpness < p->conf.min_sharpness) {
			c->n.faces_gated++;
			continue;
		}
		memcpy(q[nq], p->faces[i].descriptor, sizeof(q[nq]));
		keep[nq++] = i;
	}
	struct track *tracks[MAX_FACES];
	for (int j = 0; j < nq; j++)
		tracks[j] = track_face(c, p->faces[keep[j]].box);
	/* match_query returns the number of queries answered. */
	if (p->ctx && nq > 0 && match_query(p->ctx, &q[0][0], (unsigned)nq, 1, res) == nq) {
		for (int j = 0; j < nq; j++) {
			const struct gpu_face *f = &p->faces[keep[j]];
			struct track *t = tracks[j];

			if (res[j].n == 0 || !res[j].hit[0].pass || !t)
				continue;
			c->n.faces_matched++;
			bool seen = false;
			for (unsigned k = 0; k < t->n_alerted && !seen; k++) {
				if (strcmp(t->alerted[k], res[j].hit[0].subject) == 0) {
					seen = true; /* one alert per subject per track, carrying its best crop */
					better_evidence(p, cam, c, t, k, f, &res[j].hit[0]);
				}
			}
			if (seen || t->n_alerted >= 4 || p->n_alerts >= MAX_ALERTS)
				continue;
			t->alert_idx[t->n_alerted] = p->n_alerts;
			t->best_quality[t->n_alerted] = crop_quality(f);
			snprintf(t->alerted[t->n_alerted++], sizeof(t->alerted[0]), "%s", res[j].hit[0].subject);
			raise_alert(p, cam, c, t, f, &res[j].hit[0]);
		}
	}
	/* The batch retires: nothing of these faces outlives this frame (invariant 1). The results hold
	 * ids and distances, not biometrics; only the NQ descriptor rows used need zeroing. */
	vg_scrub(q, (size_t)nq * sizeof(q[0]));
	gpu_faces_retire(p->faces, n);
}

void pipeline_frame(struct pipeline *p, unsigned cam, const struct dp_frame *f)
{
	const AVFrame *av = f->avframe;
	struct camera *c;

	if (cam >= DP_MAX_CAMERAS || f->corrupt || !av)
		return;
	pthread_mutex_lock(&p->lock);
	c = &p->cams[cam];
	if (!c->have_first) {
		c->have_first = true;
		c->pts = 0;
		c->last_analysed = INT64_MIN / 2;
	} else {
		c->pts += (int32_t)(f->ts - c->last_ts);
	}
	c->last_ts = f->ts;
	/* Sample at the analysis rate, on the camera's own clock. */
	if (c->pts - c->last_analysed < (int64_t)(90000 / p->conf.analysis_fps))
		goto out_unlock;
	c->last_analysed = c->pts;
	if (!c->rgb || c->w != f->width || c->h != f->height || c->fmt != f->pix_fmt) {
		vg_pool_destroy(&c->rgb_pool);
		sws_freeContext(c->sws);
		c->sws = sws_getContext(f->width, f->height, f->pix_fmt, f->width, f->height, AV_PIX_FMT_RGB24,
					SWS_BILINEAR, NULL, NULL, NULL);
		if (!c->sws || vg_pool_create(&c->rgb_pool, "frame", (size_t)f->width * (size_t)f->height * 3, 1,
					      VG_POOL_BIOMETRIC) < 0)
			goto out_unlock;
		c->rgb = vg_pool_get(c->rgb_pool);
		c->w = f->width;
		c->h = f->height;
		c->fmt = f->pix_fmt;
	}
	uint8_t *dst[4] = { c->rgb };
	int dst_stride[4] = { c->w * 3 };
	sws_scale(c->sws, (const uint8_t *const *)av->data, av->linesize, 0, c->h, dst, dst_stride);
	uint64_t t0 = vg_clock_ns();
	c->n.frames_analysed++;
	analyse(p, cam, c);
	p->analysis_ns += vg_clock_ns() - t0;
	if (p->conf.progress) {
		uint64_t now = vg_clock_ns();

		if (!p->started_ns)
			p->started_ns = now;
		if (now - p->last_progress_ns >= VG_NS_PER_SEC) {
			uint64_t frames = 0;
			for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
				frames += p->cams[i].n.frames_analysed;
			double secs = (double)(now - p->started_ns) / 1e9;
			fprintf(stderr, "\rvigild run: %" PRIu64 " frames analysed, %" PRIu64 " faces (%.0f faces/s), %u alerts ",
				frames, p->faces_scanned, secs > 0 ? (double)p->faces_scanned / secs : 0.0, p->n_alerts);
			p->last_progress_ns = now;
		}
	}
out_unlock:
	pthread_mutex_unlock(&p->lock);
}

void pipeline_camera_counts(const struct pipeline *p, unsigned cam, struct pipeline_camera_counts *out)
{
	*out = cam < DP_MAX_CAMERAS ? p->cams[cam].n : (struct pipeline_camera_counts){ 0 };
}

void pipeline_write_alerts(const struct pipeline *p, FILE *f)
{
	for (unsigned i = 0; i < p->n_alerts; i++) {
		const struct alert *a = &p->alerts[i];
		char ev[128];

		if (a->evidence.saved)
			snprintf(ev, sizeof(ev), "\"store:deployment/%" PRIu64 "/segment/%u@%" PRIu64 "+%u#%" PRIu64 "\"",
				 a->evidence.deployment, a->evidence.segment, a->evidence.offset, a->evidence.len,
				 a->evidence.seq);
		else
			snprintf(ev, sizeof(ev), "null");
		fprintf(f,
			"%s\n {\"id\":\"a%u\",\"camera\":\"cam%u\",\"pts\":%" PRId64 ",\"track\":%" PRIu64
			",\"subject\":\"%s\",\"watchlist\":%u,\"metric\":\"l2\",\"value\":%.4f,\"box\":[%d,%d,%d,%d],"
			"\"evidence\":%s,\"review_id\":%" PRId64 "}",
			i ? "," : "", i + 1, a->cam + 1, a->pts, a->track, a->subject, a->watchlist, a->value, a->box[0],
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
	if (p->conf.progress && p->last_progress_ns)
		fputc('\n', stderr);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		vg_pool_destroy(&p->cams[i].rgb_pool); /* zeroes the last frame */
		sws_freeContext(p->cams[i].sws);
	}
	match_ctx_close(&p->ctx);
	match_db_close(&p->match); /* the watchlist, zeroed: the run's end purges it */
	store_close(&p->store);
	if (p->db && p->faces_scanned > p->scanned_reported)
		mgmt_deployment_add_scanned(p->db, p->conf.deployment, p->faces_scanned - p->scanned_reported);
	mgmt_db_close(&p->db);
	gpu_model_close(&p->model);
	vg_pool_destroy(&p->crop_pool);
	free(p->alerts);
	pthread_mutex_destroy(&p->lock);
	free(p);
	*pp = NULL;
}
