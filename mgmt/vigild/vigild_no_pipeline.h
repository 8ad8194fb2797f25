/*
 * vigild built without the analysis pipeline (-Dcomponents= left out gpu/, matcher/, store/ or
 * mgmt/pipeline/): `vigild run` stays the dataplane alone, and these stand in for pipeline.h.
 */
#ifndef VIGILD_NO_PIPELINE_H
#define VIGILD_NO_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dp.h"

struct pipeline_conf;
struct pipeline_camera_counts {
	uint64_t frames_sampled, frames_dropped;
	uint64_t frames_analysed, faces_detected, faces_gated, faces_matched, tracks;
};
struct pipeline;

#include <errno.h>
#include "vg_base.h"
static inline int pipeline_open(struct pipeline **out, const struct pipeline_conf *conf, const char *run_desc,
				char *err, size_t errlen)
{
	(void)out, (void)conf, (void)run_desc;
	return vg_errf(err, errlen, -ENOTSUP, "this vigild was built without the face pipeline (gpu/, matcher/, store/)");
}
static inline void pipeline_frame(struct pipeline *p, unsigned cam, const struct dp_frame *f)
{
	(void)p, (void)cam, (void)f;
}
static inline bool pipeline_takes_device_frames(const struct pipeline *p, int device)
{
	(void)p, (void)device;
	return false;
}
static inline void pipeline_camera_counts(const struct pipeline *p, unsigned cam, struct pipeline_camera_counts *out)
{
	(void)p, (void)cam;
	*out = (struct pipeline_camera_counts){ 0 };
}
static inline void pipeline_camera_name(const struct pipeline *p, unsigned cam, char *buf, size_t len)
{
	(void)p, (void)cam, (void)buf, (void)len;
}
static inline void pipeline_write_alerts(const struct pipeline *p, FILE *f)
{
	(void)p, (void)f;
}
static inline void pipeline_totals(const struct pipeline *p, uint64_t *faces, uint64_t *alerts, uint64_t *bytes,
				   double *seconds)
{
	(void)p;
	*faces = *alerts = *bytes = 0;
	*seconds = 0;
}
static inline void pipeline_finish(struct pipeline *p)
{
	(void)p;
}
static inline void pipeline_write_stages(struct pipeline *p, FILE *f)
{
	(void)p;
	fprintf(f, "\"analysis\":{\"enabled\":false}");
}
static inline void pipeline_write_privacy(const struct pipeline *p, FILE *f)
{
	(void)p, (void)f;
}
static inline void pipeline_write_gauges(struct pipeline *p, FILE *f)
{
	(void)p, (void)f;
}
static inline void pipeline_close(struct pipeline **p)
{
	(void)p;
}

#endif /* VIGILD_NO_PIPELINE_H */
