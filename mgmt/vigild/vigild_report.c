/*
 * report.json of `vigild run` (DESIGN.md "Contracts"): written from tables of the counters'
 * fields, one entry per figure, so that a new counter is one line here beside its struct's field
 * rather than a format specifier, an argument and a name in a 30-argument fprintf. Written to
 * PATH.tmp and renamed, so a reader never sees half a report.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "vigild_run_int.h"

/* A uint64_t figure of a struct: its name in the report and where it is. */
struct report_u64 {
	const char *name;
	size_t offset;
};

#define CAM(name, field) { name, offsetof(struct dp_camera_report, field) }
static const struct report_u64 camera_rtp[] = {
	CAM("rtp_packets", rtp.packets),   CAM("rtp_lost", rtp.lost),     CAM("rtp_reordered", rtp.reordered),
	CAM("rtp_duplicates", rtp.duplicates), CAM("rtp_malformed", malformed), CAM("rtp_late", rtp.late),
	CAM("rtp_resyncs", rtp.resyncs),   CAM("rtcp_sr", rtcp_sr),       CAM("aus_dropped", aus_dropped),
	CAM("frames_decoded", frames_decoded), CAM("frames_corrupt", frames_corrupt),
};
static const struct report_u64 camera_device[] = {
	CAM("frames_on_device", frames_on_device), CAM("decode_hw_errors", decode_hw_errors),
};
#undef CAM

#define PL(name) { #name, offsetof(struct pipeline_camera_counts, name) }
static const struct report_u64 camera_analysis[] = {
	PL(frames_sampled), PL(frames_dropped), PL(frames_analysed), PL(faces_detected),
	PL(faces_gated),    PL(faces_matched),  PL(tracks),
};
#undef PL

#define RX(name) { #name, offsetof(struct dp_rx_report, name) }
static const struct report_u64 rx_fields[] = {
	RX(frames), RX(bytes), RX(not_udp), RX(ip_fragments), RX(malformed), RX(unknown_flow), RX(rtcp),
	RX(answered), RX(mbuf_drops),
};
#undef RX

/* "name":value for each of the N figures of OBJ, each after a comma unless it opens an object (FIRST). */
static void write_u64s(FILE *f, const void *obj, const struct report_u64 *fields, size_t n, bool first)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\"%s\":%" PRIu64, first && i == 0 ? "" : ",", fields[i].name,
			*(const uint64_t *)(const void *)((const char *)obj + fields[i].offset));
}

static void write_camera(FILE *f, unsigned i, const struct dp_camera_report *c, struct pipeline *pl, const char *name)
{
	struct pipeline_camera_counts pc = { 0 };

	if (pl)
		pipeline_camera_counts(pl, i, &pc);
	fprintf(f, "%s\n {\"id\":\"%s\",\"dst_port\":%u,\"ssrc\":%" PRIu32 ",\"codec\":\"%s\"", i ? "," : "", name,
		c->dst_port, c->ssrc, dp_codec_name(c->codec));
	write_u64s(f, c, camera_rtp, VG_ARRAY_SIZE(camera_rtp), false);
	write_u64s(f, &pc, camera_analysis, VG_ARRAY_SIZE(camera_analysis), false);
	fprintf(f, ",\"width\":%d,\"height\":%d,\"decoder\":\"%s\"", c->width, c->height, c->nvdec ? "nvdec" : "cpu");
	write_u64s(f, c, camera_device, VG_ARRAY_SIZE(camera_device), false);
	/* The reason is the dataplane's own text, with no quote or backslash in it. */
	if (c->decode_fallback[0])
		fprintf(f, ",\"decode_fallback\":\"%s\"}", c->decode_fallback);
	else
		fprintf(f, ",\"decode_fallback\":null}");
}

static void write_stages(FILE *f, const struct dp_run_report *r, const struct run_report_extra *x, struct pipeline *pl,
			 uint64_t frames)
{
	const struct dp_rx_report *rx = &r->rx;
	double secs = rx->seconds > 0 ? rx->seconds : 1e-9;

	if (pl) {
		pipeline_write_privacy(pl, f);
		fprintf(f, ",\n\"stages\":{");
		pipeline_write_stages(pl, f);
	} else {
		fprintf(f, "\"stages\":{\"analysis\":{\"enabled\":false}");
	}
	fprintf(f, ",\n \"rx\":{");
	write_u64s(f, rx, rx_fields, VG_ARRAY_SIZE(rx_fields), true);
	fprintf(f, ",\"seconds\":%.6f,\"frames_per_second\":%.0f,\"cycles_per_frame\":%.1f},\n", rx->seconds,
		(double)rx->frames / secs, rx->frames ? (double)rx->tsc_cycles / (double)rx->frames : 0.0);
	fprintf(f,
		" \"decode\":{\"access_units\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"frames\":%" PRIu64
		",\"frames_per_second\":%.1f,\"frames_on_device\":%" PRIu64 ",\"hw_errors\":%" PRIu64
		",\"fallbacks\":%u,\"download_errors\":%" PRIu64 "},\n",
		r->decode_aus, r->decode_errors, frames, (double)frames / secs, r->decode_frames_on_device,
		r->decode_hw_errors, r->decode_fallbacks, x->download_errors);
	fprintf(f, " \"rtsp\":{\"sessions\":%u,\"reconnects\":%" PRIu64 "}}}\n", x->rtsp_sessions, x->rtsp_reconnects);
}

int vigild_write_report(const char *path, const struct dp_run_report *r, const struct run_report_extra *x,
			struct pipeline *pl, const char *const *names)
{
	uint64_t frames = 0, faces = 0, alerts = 0, evidence = 0;
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "w");
	if (!f)
		return -errno;
	fprintf(f, "{\"cameras\":[");
	for (unsigned i = 0; i < r->n_cameras; i++) {
		const struct dp_camera_report *c = &r->cameras[i];

		frames += c->frames_decoded;
		write_camera(f, i, c, pl, i < DP_MAX_CAMERAS && names[i] ? names[i] : c->id);
	}
	fprintf(f, "],\n\"alerts\":[");
	if (pl) {
		double analysis_s;

		pipeline_write_alerts(pl, f);
		pipeline_totals(pl, &faces, &alerts, &evidence, &analysis_s);
	}
	fprintf(f, "],\n\"totals\":{\"faces_scanned\":%" PRIu64 ",\"alerts\":%" PRIu64 ",\"evidence_bytes\":%" PRIu64 "},\n",
		faces, alerts, evidence);
	write_stages(f, r, x, pl, frames);
	if (fclose(f) != 0) {
		remove(tmp);
		return -EIO;
	}
	if (rename(tmp, path) != 0)
		return -errno;
	return 0;
}
