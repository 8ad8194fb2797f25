/*
 * The pipeline's decisions about faces, pure (no I/O, no clock, analysis thread): which track a
 * face continues, the quality gate, which crop is better evidence, and one alert per subject per
 * track. tests/mgmt/test_pipeline_track.c checks each.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "match_eval.h"
#include "pipeline_int.h"

static double iou(const double *a, const double *b)
{
	double x0 = fmax(a[0], b[0]), y0 = fmax(a[1], b[1]);
	double x1 = fmin(a[0] + a[2], b[0] + b[2]), y1 = fmin(a[1] + a[3], b[1] + b[3]);
	double inter = fmax(0, x1 - x0) * fmax(0, y1 - y0), uni = a[2] * a[3] + b[2] * b[3] - inter;

	return uni > 0 ? inter / uni : 0;
}

/*
 * The track this face (BOX, in the frame at PTS) continues: among live tracks not yet given a face in this frame, the one
 * whose box, moved by its velocity to this frame, overlaps best (IoU), or else whose predicted
 * centre is nearest, within one box size (people cross a camera at hundreds of pixels a second);
 * otherwise a new track. Cost: MAX_TRACKS per face.
 */
struct track *pipeline_track_face(struct pipeline_tracks *tr, int64_t pts, const double box[4])
{
	struct track *best = NULL, *free_slot = NULL;
	double best_iou = TRACK_IOU, best_dist = INFINITY;
	double cx = box[0] + box[2] / 2, cy = box[1] + box[3] / 2;

	for (int i = 0; i < MAX_TRACKS; i++) {
		struct track *t = &tr->t[i];

		if (t->live && (double)(pts - t->last_pts) > TRACK_TTL_S * 90000)
			t->live = false;
		if (!t->live) {
			if (!free_slot)
				free_slot = t;
			continue;
		}
		if (t->last_pts == pts)
			continue; /* already has a face in this frame */
		double dt = (double)(pts - t->last_pts);
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
		/* a track that is over gave its template back first (pipeline_alert.c's sweep) */
		if (VG_NEVER(free_slot->tmpl != NULL))
			return NULL;
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->id = ++tr->next_id;
		free_slot->live = true;
		tr->started++;
		best = free_slot;
	}
	if (best) {
		double dt = (double)(pts - best->last_pts);
		if (best->last_pts != 0 && dt > 0) {
			/* Smoothed velocity of the centre, so one jittery box does not throw the prediction. */
			best->vx = 0.5 * best->vx + 0.5 * (cx - (best->box[0] + best->box[2] / 2)) / dt;
			best->vy = 0.5 * best->vy + 0.5 * (cy - (best->box[1] + best->box[3] / 2)) / dt;
		}
		memcpy(best->box, box, sizeof(best->box));
		best->last_pts = pts;
	}
	return best;
}

/* One number for "a better crop to show a reviewer": larger, sharper, more frontal. */
double pipeline_crop_quality(const struct gpu_face *f)
{
	return f->quality.interocular_px * fmin(1.0, f->quality.sharpness / 50.0) *
	       fmax(0.1, cos(f->quality.yaw_deg * M_PI / 180.0));
}

bool pipeline_face_passes_gate(const struct pipeline_conf *conf, const struct gpu_quality *q)
{
	return q->interocular_px >= conf->min_interocular_px && fabs(q->yaw_deg) <= conf->max_abs_yaw_deg &&
	       q->sharpness >= conf->min_sharpness;
}

bool pipeline_crop_better(double quality, double best)
{
	return quality >= 1.25 * best;
}

enum pipeline_sighting pipeline_track_sighting(const struct track *t, const char *subject, unsigned *slot)
{
	for (unsigned a = 0; a < t->n_alerted; a++)
		if (strcmp(t->alerted[a], subject) == 0) {
			*slot = a;
			return PIPELINE_SIGHTING_ALERTED;
		}
	return t->n_alerted < TRACK_SUBJECTS_MAX ? PIPELINE_SIGHTING_NEW : PIPELINE_SIGHTING_TRACK_FULL;
}

size_t pipeline_template_size(unsigned k, unsigned d)
{
	return sizeof(struct track_template) + (size_t)k * d * sizeof(float);
}

void pipeline_template_init(struct track_template *tt, unsigned k, unsigned d)
{
	tt->n = 0;
	tt->k = k > PIPELINE_FUSION_MAX ? PIPELINE_FUSION_MAX : k;
	tt->d = d;
}

void pipeline_template_add(struct track_template *tt, const float *desc, double quality)
{
	unsigned at;

	if (tt->n < tt->k) {
		at = tt->n++;
	} else {
		/* full: replace the worst, if this one is better */
		at = 0;
		for (unsigned i = 1; i < tt->n; i++)
			if (tt->quality[i] < tt->quality[at])
				at = i;
		if (quality <= tt->quality[at])
			return;
	}
	tt->quality[at] = quality;
	memcpy(tt->desc + (size_t)at * tt->d, desc, tt->d * sizeof(float));
}

unsigned pipeline_template_fuse(const struct track_template *tt, int metric, float *out)
{
	const float *descs[PIPELINE_FUSION_MAX];

	/* match_eval_fuse: the mean in double, summed in a fixed order (the same sightings give the
	 * same template), the very code `vigilctl eval --fuse` measured */
	for (unsigned i = 0; i < tt->n; i++)
		descs[i] = tt->desc + (size_t)i * tt->d;
	if (!tt->n || match_eval_fuse(descs, tt->n, tt->d, metric, out) < 0)
		memset(out, 0, tt->d * sizeof(*out));
	return tt->n;
}

void pipeline_track_alerted(struct track *t, const char *subject, unsigned alert_index, double quality)
{
	if (VG_NEVER(t->n_alerted >= TRACK_SUBJECTS_MAX))
		return;
	t->alert_idx[t->n_alerted] = alert_index;
	t->best_quality[t->n_alerted] = quality;
	snprintf(t->alerted[t->n_alerted++], sizeof(t->alerted[0]), "%s", subject);
}
