/*
 * From matched faces to alerts (analysis thread): each frame's counts and tracks, then for a
 * subject's first match on a track its evidence crop durable in the store and the alert recorded
 * for a person's review (invariant 3); later sightings may only improve the crop.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pipeline_int.h"

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

/* The metric an alert names: "l2", or "l2-track" when the track's fused template matched and the
 * sighting alone did not (the reviewer should know the crop shown did not match by itself). */
static const char *alert_metric(const struct pipeline *p, bool fused)
{
	if (p->metric == MATCH_METRIC_COSINE)
		return fused ? "cosine-track" : "cosine";
	return fused ? "l2-track" : "l2";
}

static void fill_store_alert(const struct pipeline *p, unsigned cam, const struct camera *c, const struct track *t,
			     const struct gpu_face *f, const struct match_hit *hit, bool fused, struct store_alert *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->deployment = (uint64_t)p->conf.deployment;
	sa->time_ns = vg_clock_realtime_ns();
	sa->track = t->id;
	sa->pts = c->pts;
	pipeline_camera_label(p, cam, sa->camera, sizeof(sa->camera));
	/* The store's record holds 63 bytes of the id (a 64-byte id is cut); mgmt's alert keeps it whole. */
	snprintf(sa->subject, sizeof(sa->subject), "%.63s", hit->subject);
	snprintf(sa->watchlist, sizeof(sa->watchlist), "%u", hit->watchlist);
	snprintf(sa->metric, sizeof(sa->metric), "%s", alert_metric(p, fused));
	snprintf(sa->model, sizeof(sa->model), "%s", gpu_model_info_of(p->model)->id);
	sa->value = hit->value;
	sa->threshold = pipeline_threshold_of(p, hit->watchlist);
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
	double q = pipeline_crop_quality(f);
	struct store_alert sa;
	struct store_handle h;
	char loc[128];

	if (!pipeline_crop_better(q, t->best_quality[k]) || !a->mgmt_id)
		return;
	fill_store_alert(p, cam, c, t, f, hit, false, &sa);
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
			const struct match_hit *hit, bool fused)
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
	a->metric = alert_metric(p, fused);
	a->value = hit->value;
	for (int i = 0; i < 4; i++)
		a->box[i] = (int32_t)lround(f->box[i]);

	fill_store_alert(p, cam, c, t, f, hit, fused, &sa);
	put_evidence(p, c, f, &sa, &a->evidence);

	/* Then the alert itself, for a person to review (invariant 3); after the evidence is durable, so
	 * a crash never leaves a recorded alert pointing at evidence that was not acknowledged. */
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	struct mgmt_alert ma = { .deployment = p->conf.deployment, .pts = c->pts, .track = t->id, .value = hit->value,
				 .threshold = pipeline_threshold_of(p, hit->watchlist) };
	pipeline_camera_label(p, cam, ma.camera, sizeof(ma.camera));
	snprintf(ma.subject, sizeof(ma.subject), "%s", hit->subject);
	snprintf(ma.watchlist, sizeof(ma.watchlist), "%u", hit->watchlist);
	snprintf(ma.watchlist_seal, sizeof(ma.watchlist_seal), "%s", pipeline_watchlist_seal(p, hit->watchlist));
	snprintf(ma.metric, sizeof(ma.metric), "%s", alert_metric(p, fused));
	memcpy(ma.box, a->box, sizeof(ma.box));
	if (a->evidence.saved)
		locator(&a->evidence, ma.evidence, sizeof(ma.evidence));
	if (mgmt_alert_raise(p->db, &vigild, &ma) == 0)
		a->mgmt_id = ma.id;
	/* The faces scanned so far join the public record with each alert, and at the end. */
	mgmt_deployment_add_scanned(p->db, p->conf.deployment, p->faces_scanned - p->scanned_reported);
	p->scanned_reported = p->faces_scanned;
}

/*
 * Track fusion for one frame's NK gated faces (from K0 in p->keep, on TRACKS): each sighting joins
 * its track's template (taken from the pool with the track's first face); the templates of the
 * sightings that did not match alone are fused and matched in one query, and where one passes,
 * R[j] points at its result in p->fused_res instead of the sighting's.
 */
static void fuse_frame(struct pipeline *p, struct track *const *tracks, int k0, int nk,
		       const struct match_result **r)
{
	unsigned idx[MAX_FACES], nf = 0;

	for (int j = 0; j < nk; j++) {
		struct track *t = tracks[j];

		if (!t)
			continue;
		if (!t->tmpl) {
			if (!(t->tmpl = vg_pool_get(p->templates_pool))) {
				p->unfused_tracks++;
				continue;
			}
			pipeline_template_init(t->tmpl, p->conf.track_fusion, p->d);
		}
		pipeline_template_add(t->tmpl, p->q + (size_t)(k0 + j) * p->d,
				      pipeline_crop_quality(&p->faces[p->keep[k0 + j]]));
		if ((r[j]->n && r[j]->hit[0].pass) || t->tmpl->n < 2)
			continue;
		pipeline_template_fuse(t->tmpl, p->metric == MATCH_METRIC_COSINE, p->fused_q + (size_t)nf * p->d);
		idx[nf++] = (unsigned)j;
	}
	if (nf && match_query(p->ctx, p->fused_q, nf, 1, p->fused_res) == (int)nf)
		for (unsigned i = 0; i < nf; i++)
			if (p->fused_res[i].n && p->fused_res[i].hit[0].pass) {
				r[idx[i]] = &p->fused_res[i];
				p->fused_matches++;
			}
	vg_scrub(p->fused_q, (size_t)nf * p->d * sizeof(float));
}

/*
 * The templates of camera CAM's tracks that are over (not seen for TRACK_TTL_S at this frame's
 * PTS, the tracker's own rule) back to the pool, zeroed: before the tracker may reuse their slots.
 */
static void templates_sweep(struct pipeline *p, struct camera *c, int64_t pts)
{
	for (int i = 0; i < MAX_TRACKS; i++) {
		struct track *t = &c->tracks.t[i];

		if (t->tmpl && (!t->live || (double)(pts - t->last_pts) > TRACK_TTL_S * 90000)) {
			vg_pool_put(p->templates_pool, t->tmpl);
			t->tmpl = NULL;
		}
	}
}

/* Frame I of the batch, once its faces are matched: counts, tracks, alerts, in frame order. Its
 * gated faces are skipped; K0 is its first entry in p->keep / p->res. Returns the next K. */
int pipeline_frame_results(struct pipeline *p, unsigned i, int k0, int nkeep, bool matched)
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
	if (p->templates_pool) /* before the tracker reuses the slots of tracks that are over */
		templates_sweep(p, c, c->pts);
	const struct match_result *results[MAX_FACES];
	for (int j = 0; j < nk; j++) {
		tracks[j] = pipeline_track_face(&c->tracks, c->pts, p->faces[p->keep[k0 + j]].box);
		results[j] = &p->res[k0 + j];
	}
	if (matched && p->templates_pool)
		fuse_frame(p, tracks, k0, nk, results);
	for (int j = 0; matched && j < nk; j++) {
		const struct gpu_face *f = &p->faces[p->keep[k0 + j]];
		const struct match_result *r = results[j];
		bool fused = r != &p->res[k0 + j];
		struct track *t = tracks[j];

		if (r->n == 0 || !r->hit[0].pass || !t)
			continue;
		c->n.faces_matched++;
		vg_counter_add(p->row, ANALYSIS_faces_matched, 1);
		unsigned slot;
		switch (pipeline_track_sighting(t, r->hit[0].subject, &slot)) {
		case PIPELINE_SIGHTING_ALERTED: /* one alert per subject per track, carrying its best crop */
			better_evidence(p, b->cam, c, t, slot, f, &r->hit[0]);
			break;
		case PIPELINE_SIGHTING_NEW:
			if (p->n_alerts >= MAX_ALERTS)
				break;
			pipeline_track_alerted(t, r->hit[0].subject, p->n_alerts, pipeline_crop_quality(f));
			raise_alert(p, b->cam, c, t, f, &r->hit[0], fused);
			break;
		case PIPELINE_SIGHTING_TRACK_FULL:
			break;
		}
	}
	c->rgb = NULL;
	return k;
}
