/*
 * mgmt/pipeline's decisions, on their own (pipeline_track.c, pipeline_intake.c): the tracker that
 * makes one person one track, the quality gate, which crop is better evidence, one alert per
 * subject per track, the sampling clock and the drop policy. No nets, no files.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <string.h>

#include "vg_test.h"
#include "pipeline_int.h"

#define TICKS_PER_FRAME_10FPS 9000 /* 90 kHz RTP clock */

static void check_tracker(void)
{
	struct pipeline_tracks tr = { 0 };
	double box[4] = { 100, 100, 80, 80 }, other[4] = { 900, 500, 80, 80 };
	struct track *t, *u;
	uint64_t id;
	int64_t pts = TICKS_PER_FRAME_10FPS;

	/* A face walking right 20 px a frame stays one track. */
	t = pipeline_track_face(&tr, pts, box);
	CHECK(t != NULL);
	id = t ? t->id : 0;
	for (int i = 0; i < 10; i++) {
		pts += TICKS_PER_FRAME_10FPS;
		box[0] += 20;
		t = pipeline_track_face(&tr, pts, box);
		CHECK(t && t->id == id);
	}
	/* Another face in the same frame is another track, never the first one's. */
	u = pipeline_track_face(&tr, pts, other);
	CHECK(u && u->id != id);
	/* Two faces in one frame at the same place: the second cannot take the first's track. */
	u = pipeline_track_face(&tr, pts, box);
	CHECK(u && u->id != id);
	CHECK_EQ_INT(tr.started, 3);

	/* Fast: 70 px a frame with an 80 px box (barely overlapping), then 100 px (never overlapping,
	 * more than a box away): the velocity learnt from the first steps carries the track. */
	struct pipeline_tracks fast = { 0 };
	double f[4] = { 0, 300, 80, 80 };
	int64_t fp = TICKS_PER_FRAME_10FPS;
	t = pipeline_track_face(&fast, fp, f);
	id = t ? t->id : 0;
	for (int i = 0; i < 10; i++) {
		fp += TICKS_PER_FRAME_10FPS;
		f[0] += i < 5 ? 70 : 100;
		t = pipeline_track_face(&fast, fp, f);
		CHECK(t && t->id == id);
	}
	CHECK_EQ_INT(fast.started, 1);

	/* A track not seen for over a second is over: the same place later is a new person. */
	pts += 2 * 90000;
	t = pipeline_track_face(&tr, pts, box);
	CHECK(t && t->id != id && t->id > 3);

	/* At most MAX_TRACKS live tracks: the next face gets none (NULL), not another's track. */
	struct pipeline_tracks full = { 0 };
	for (int i = 0; i < MAX_TRACKS; i++) {
		double b[4] = { (double)(i % 16) * 200, (double)(i / 16) * 200, 50, 50 };
		CHECK(pipeline_track_face(&full, 1000, b) != NULL);
	}
	double extra[4] = { 5000, 5000, 50, 50 };
	CHECK(pipeline_track_face(&full, 1000, extra) == NULL);
}

static void check_gate(void)
{
	struct pipeline_conf conf = { .min_interocular_px = 16, .max_abs_yaw_deg = 50, .min_sharpness = 5 };
	struct gpu_quality q = { .interocular_px = 16, .yaw_deg = -50, .sharpness = 5 };

	CHECK(pipeline_face_passes_gate(&conf, &q)); /* at every limit: passes */
	q.interocular_px = 15.9;
	CHECK(!pipeline_face_passes_gate(&conf, &q)); /* too small */
	q.interocular_px = 40;
	q.yaw_deg = 51;
	CHECK(!pipeline_face_passes_gate(&conf, &q)); /* turned away */
	q.yaw_deg = -51;
	CHECK(!pipeline_face_passes_gate(&conf, &q));
	q.yaw_deg = 0;
	q.sharpness = 4.9;
	CHECK(!pipeline_face_passes_gate(&conf, &q)); /* blurred */
}

static void check_best_crop(void)
{
	struct gpu_face small = { 0 }, big = { 0 };

	small.quality = (struct gpu_quality){ .interocular_px = 20, .yaw_deg = 0, .sharpness = 60 };
	big.quality = (struct gpu_quality){ .interocular_px = 40, .yaw_deg = 0, .sharpness = 60 };
	CHECK(pipeline_crop_quality(&big) > pipeline_crop_quality(&small));
	/* Sharper counts up to a point; turned away counts against. */
	struct gpu_face turned = big;
	turned.quality.yaw_deg = 60;
	CHECK(pipeline_crop_quality(&turned) < pipeline_crop_quality(&big));
	/* A crop replaces the evidence only when clearly better: a quarter, so evidence never flaps. */
	CHECK(pipeline_crop_better(125, 100));
	CHECK(!pipeline_crop_better(124.9, 100));
	CHECK(!pipeline_crop_better(100, 100));
}

static void check_alert_once(void)
{
	struct track t = { .id = 1, .live = true }, other = { .id = 2, .live = true };
	unsigned slot = 99;

	CHECK_EQ_INT(pipeline_track_sighting(&t, "subject-a", &slot), PIPELINE_SIGHTING_NEW);
	pipeline_track_alerted(&t, "subject-a", 7, 30.0);
	/* The same person again on the same track: no second alert, the slot of the first. */
	CHECK_EQ_INT(pipeline_track_sighting(&t, "subject-a", &slot), PIPELINE_SIGHTING_ALERTED);
	CHECK_EQ_INT(slot, 0);
	CHECK_EQ_INT(t.alert_idx[slot], 7);
	CHECK(t.best_quality[slot] == 30.0);
	/* Another subject on the same track (two people merged in one box) is its own alert. */
	CHECK_EQ_INT(pipeline_track_sighting(&t, "subject-b", &slot), PIPELINE_SIGHTING_NEW);
	pipeline_track_alerted(&t, "subject-b", 8, 10.0);
	CHECK_EQ_INT(pipeline_track_sighting(&t, "subject-b", &slot), PIPELINE_SIGHTING_ALERTED);
	CHECK_EQ_INT(slot, 1);
	pipeline_track_alerted(&t, "subject-c", 9, 1.0);
	pipeline_track_alerted(&t, "subject-d", 10, 1.0);
	CHECK_EQ_INT(pipeline_track_sighting(&t, "subject-e", &slot), PIPELINE_SIGHTING_TRACK_FULL);
	/* A subject's ids differ by a prefix only: still different people. */
	CHECK_EQ_INT(pipeline_track_sighting(&other, "subject-a", &slot), PIPELINE_SIGHTING_NEW);
	pipeline_track_alerted(&other, "subject-a", 11, 1.0);
	CHECK_EQ_INT(pipeline_track_sighting(&other, "subject-ab", &slot), PIPELINE_SIGHTING_NEW);
}

static void check_sampling(void)
{
	struct pipeline_sampler s = { 0 };
	int due = 0;

	/* A 30 fps camera analysed at 10 fps: every third frame, on the camera's own clock. */
	for (uint32_t i = 0; i < 30; i++)
		due += pipeline_sample_due(&s, 1000 + i * 3000, 10);
	CHECK_EQ_INT(due, 10);
	/* RTP time wraps at 2^32: sampling goes on across it without a burst or a gap. */
	struct pipeline_sampler w = { 0 };
	due = 0;
	for (uint32_t i = 0; i < 30; i++)
		due += pipeline_sample_due(&w, UINT32_MAX - 45000 + i * 3000, 10);
	CHECK_EQ_INT(due, 10);
}

static void *post_later(void *arg)
{
	sem_post(arg);
	return NULL;
}

static void check_drop_policy(void)
{
	sem_t slots;
	uint64_t waited = 0;
	pthread_t th;

	/* A live camera with a queue of 2: the third frame finds no slot and is dropped at once. */
	CHECK_EQ_INT(sem_init(&slots, 0, 2), 0);
	CHECK(pipeline_slot_take(&slots, false, &waited));
	CHECK(pipeline_slot_take(&slots, false, &waited));
	CHECK(!pipeline_slot_take(&slots, false, &waited));
	CHECK_EQ_INT(waited, 0);
	/* A recorded run is lossless: it waits for the analysis to give a slot back. */
	CHECK_EQ_INT(pthread_create(&th, NULL, post_later, &slots), 0);
	CHECK(pipeline_slot_take(&slots, true, &waited));
	pthread_join(th, NULL);
	sem_destroy(&slots);
}

/*
 * Track fusion's template: the best K sightings by crop quality are kept, a worse one is not, the
 * fused descriptor is their mean (unit length under cosine), and K is held to its maximum.
 */
static void check_template(void)
{
	enum { D = 128 };
	struct track_template *tt = calloc(1, pipeline_template_size(PIPELINE_FUSION_MAX, D));
	float d[D], fused[D];

	pipeline_template_init(tt, 3, D);
	for (int s = 0; s < 5; s++) { /* sightings of value s, quality s: 0 1 2 3 4 */
		for (int i = 0; i < D; i++)
			d[i] = (float)s;
		pipeline_template_add(tt, d, (double)s);
	}
	CHECK_EQ_INT(tt->n, 3);
	CHECK_EQ_INT(pipeline_template_fuse(tt, 0, fused), 3);
	CHECK(fused[0] == 3.0f && fused[D - 1] == 3.0f); /* the mean of 2, 3, 4 */
	for (int i = 0; i < D; i++)
		d[i] = 100.0f;
	pipeline_template_add(tt, d, 1.0); /* worse than all three kept: ignored */
	pipeline_template_fuse(tt, 0, fused);
	CHECK(fused[5] == 3.0f);
	pipeline_template_add(tt, d, 9.0); /* better: replaces the worst (2): mean of 3, 4, 100 */
	pipeline_template_fuse(tt, 0, fused);
	CHECK(fabsf(fused[5] - 107.0f / 3) < 1e-4f);
	/* under cosine the template is unit length */
	pipeline_template_fuse(tt, 1, fused);
	double norm = 0;
	for (int i = 0; i < D; i++)
		norm += (double)fused[i] * fused[i];
	CHECK(fabs(norm - 1) < 1e-5);
	/* K beyond the maximum is held to it */
	pipeline_template_init(tt, PIPELINE_FUSION_MAX + 5, D);
	for (int s = 0; s < PIPELINE_FUSION_MAX + 3; s++)
		pipeline_template_add(tt, d, (double)s);
	CHECK_EQ_INT(tt->n, PIPELINE_FUSION_MAX);
	free(tt);
}

int main(void)
{
	check_tracker();
	check_template();
	check_gate();
	check_best_crop();
	check_alert_once();
	check_sampling();
	check_drop_policy();
	return vg_test_exit();
}
