/*
 * What a run reports (any thread once the run finished; the gauges while it runs): the analysis
 * stage's figures, the matcher's and the GPU's, privacy, the alerts and the totals of report.json.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline_int.h"

void pipeline_write_privacy(const struct pipeline *p, FILE *f)
{
	const struct vg_pool *pools[DP_MAX_CAMERAS + 1];
	unsigned n = 0, dontdump = 0, locked = 0;

	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		if (p->cams[i].pool)
			pools[n++] = p->cams[i].pool;
	if (p->crop_pool)
		pools[n++] = p->crop_pool;
	for (unsigned i = 0; i < n; i++) {
		dontdump += vg_pool_kernel_dontdump(pools[i]) == 1;
		locked += vg_pool_locked(pools[i]);
	}
	/* The kernel's view, not the code's intent: what a core dump or swap would actually take. */
	fprintf(f, "\"privacy\":{\"undumpable\":%s,\"biometric_pools\":%u,\"pools_dontdump\":%u,\"pools_locked\":%u}",
		prctl(PR_GET_DUMPABLE) == 0 ? "true" : "false", n, dontdump, locked);
}

void pipeline_write_gauges(struct pipeline *p, FILE *f)
{
	/* Our own atomics: the ring's count is plain loads of indices another thread writes. */
	unsigned n = atomic_load_explicit(&p->n_cams, memory_order_relaxed);
	unsigned queued = atomic_load_explicit(&p->queued, memory_order_relaxed);

	fprintf(f,
		"# HELP vigil_analysis_queued_frames frames waiting for the analysis now, all cameras\n"
		"# TYPE vigil_analysis_queued_frames gauge\nvigil_analysis_queued_frames %u\n"
		"# HELP vigil_analysis_queue_capacity frames each camera may queue\n"
		"# TYPE vigil_analysis_queue_capacity gauge\nvigil_analysis_queue_capacity %u\n"
		"# HELP vigil_analysis_cameras cameras that have had a frame queued\n"
		"# TYPE vigil_analysis_cameras gauge\nvigil_analysis_cameras %u\n"
		"# HELP vigil_analysis_batch_capacity frames a batch of the face nets takes\n"
		"# TYPE vigil_analysis_batch_capacity gauge\nvigil_analysis_batch_capacity %u\n"
		"# HELP vigil_gpu_memory_bytes device memory the face pipeline holds (0: the nets run on the CPU)\n"
		"# TYPE vigil_gpu_memory_bytes gauge\nvigil_gpu_memory_bytes %" PRIu64 "\n",
		queued, p->conf.queue_depth, n, p->batch_max, p->gpu_bytes);
}

/* A one-line reason as a JSON string's body: quotes, backslashes and controls become spaces. */
static void json_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '"' || *s == '\\' || (unsigned char)*s < 0x20 ? ' ' : *s, f);
}

/* "matcher": where the watchlist was scanned (after the run). */
static void write_matcher(const struct pipeline *p, FILE *f)
{
	struct match_stats ms = { 0 };

	if (p->match)
		match_stats_get(p->match, &ms);
	fprintf(f, "\"matcher\":{\"where\":\"");
	json_text(f, p->match ? p->match_where : "none");
	fprintf(f,
		"\",\"device_snapshot\":%s,\"device_queries\":%" PRIu64 ",\"device_errors\":%" PRIu64
		",\"host_fallbacks\":%" PRIu64 ",\"device_bytes\":%" PRIu64 "}",
		ms.device_snapshot ? "true" : "false", ms.device_queries, ms.device_errors,
		p->match_host_fallbacks + ms.device_fallbacks, ms.device_bytes);
}

/* "gpu": the face pipeline on the device (after the run), or null on the CPU. */
static void write_gpu(const struct pipeline *p, FILE *f)
{
#ifdef HAVE_VIGIL_GPU_CUDA
	if (p->gpu) {
		struct gpu_cuda_faces_stats st;
		struct gpu_cuda_device_info info = { 0 };

		gpu_cuda_faces_stats_get(p->gpu, &st);
		if (p->gpu_device < 0 || gpu_cuda_device_info(p->gpu_device, &info) < 0)
			snprintf(info.name, sizeof(info.name), "%s", p->gpu_device < 0 ? "host emulation" : "?");
		fprintf(f, "\"gpu\":{\"device\":\"");
		json_text(f, info.name);
		fprintf(f,
			"\",\"batches\":%" PRIu64 ",\"frames\":%" PRIu64 ",\"frames_on_device\":%" PRIu64
			",\"detector_inputs\":%" PRIu64 ",\"faces\":%" PRIu64 ",\"graph_launches\":%" PRIu64
			",\"graph_failures\":%" PRIu64 ",\"cudnn_fallbacks\":%d,\"memory_bytes\":%" PRIu64 "}",
			st.batches, st.frames, p->frames_on_device, st.detector_inputs, st.faces, st.graph_launches,
			st.graph_failures, st.cudnn_fallbacks, st.device_bytes);
		return;
	}
#endif
	(void)p;
	fprintf(f, "\"gpu\":null");
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

void pipeline_write_stages(struct pipeline *p, FILE *f)
{
	uint64_t sampled = 0, dropped = 0, qmax = 0, wait_ns = 0, gated = 0, oversize = 0;
	size_t n = p->n_latency < LATENCY_SAMPLES ? (size_t)p->n_latency : LATENCY_SAMPLES;
	double p50 = 0, p99 = 0, max = 0;

	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		sampled += p->cams[i].frames_sampled;
		dropped += p->cams[i].frames_dropped;
		if (p->cams[i].queue_max > qmax)
			qmax = p->cams[i].queue_max;
		wait_ns += p->cams[i].wait_ns;
		gated += p->cams[i].n.faces_gated;
		oversize += p->cams[i].frames_oversize;
	}
	if (n) { /* after the run: the order of the samples no longer matters */
		qsort(p->latency_us, n, sizeof(*p->latency_us), cmp_u32);
		p50 = p->latency_us[n / 2] / 1e3;
		p99 = p->latency_us[n * 99 / 100 < n - 1 ? n * 99 / 100 : n - 1] / 1e3;
		max = p->latency_us[n - 1] / 1e3;
	}
	fprintf(f,
		"\"analysis\":{\"enabled\":true,\"seconds\":%.3f,\"mode\":\"%s\",\"queue_depth\":%u,\"frames_sampled\":%" PRIu64
		",\"frames_dropped\":%" PRIu64 ",\"queue_max\":%" PRIu64 ",\"decode_wait_seconds\":%.3f,"
		"\"latency_ms\":{\"p50\":%.2f,\"p99\":%.2f,\"max\":%.2f},\"faces_gated\":%" PRIu64 ",\"better_crops\":%" PRIu64
		",\"track_fusion\":%u,\"fused_matches\":%" PRIu64 ",\"unfused_tracks\":%" PRIu64
		",\"nets\":\"%s\",\"nets_seconds\":%.3f,\"nets_errors\":%" PRIu64 ",\"frames_oversize\":%" PRIu64 ","
		"\"batch\":{\"max\":%u,\"deadline_ms\":%.1f,\"batches\":%" PRIu64 ",\"mean\":%.2f,\"largest\":%" PRIu64
		",\"deadline_expired\":%" PRIu64 "},",
		(double)p->analysis_ns / 1e9, p->conf.lossless ? "lossless" : "drop-newest", p->conf.queue_depth, sampled,
		dropped, qmax, (double)wait_ns / 1e9, p50, p99, max, gated, p->better_crops, p->conf.track_fusion,
		p->fused_matches, p->unfused_tracks,
		p->conf.gpu ? p->conf.gpu : "cpu", (double)p->nets_ns / 1e9, p->nets_errors, oversize, p->batch_max,
		(double)p->batch_deadline_ns / 1e6, p->batches, p->batches ? (double)p->batched_frames / (double)p->batches : 0.0,
		p->batch_largest, p->batch_deadlines);
	write_matcher(p, f);
	fputc(',', f);
	write_gpu(p, f);
	fputc('}', f);
}

void pipeline_camera_name(const struct pipeline *p, unsigned cam, char *buf, size_t len)
{
	pipeline_camera_label(p, cam, buf, len);
}

void pipeline_camera_counts(const struct pipeline *p, unsigned cam, struct pipeline_camera_counts *out)
{
	*out = (struct pipeline_camera_counts){ 0 };
	if (cam >= DP_MAX_CAMERAS)
		return;
	*out = p->cams[cam].n;
	out->frames_sampled = p->cams[cam].frames_sampled;
	out->frames_dropped = p->cams[cam].frames_dropped;
	out->tracks = p->cams[cam].tracks.started;
}

void pipeline_write_alerts(const struct pipeline *p, FILE *f)
{
	for (unsigned i = 0; i < p->n_alerts; i++) {
		const struct alert *a = &p->alerts[i];
		char ev[128], cam[64];

		pipeline_camera_label(p, a->cam, cam, sizeof(cam));
		if (a->evidence.saved)
			snprintf(ev, sizeof(ev), "\"store:deployment/%" PRIu64 "/segment/%u@%" PRIu64 "+%u#%" PRIu64 "\"",
				 a->evidence.deployment, a->evidence.segment, a->evidence.offset, a->evidence.len,
				 a->evidence.seq);
		else
			snprintf(ev, sizeof(ev), "null");
		fprintf(f,
			"%s\n {\"id\":\"a%u\",\"camera\":\"%s\",\"pts\":%" PRId64 ",\"track\":%" PRIu64
			",\"subject\":\"%s\",\"watchlist\":%u,\"metric\":\"%s\",\"value\":%.4f,\"box\":[%d,%d,%d,%d],"
			"\"evidence\":%s,\"review_id\":%" PRId64 "}",
			i ? "," : "", i + 1, cam, a->pts, a->track, a->subject, a->watchlist, a->metric, a->value, a->box[0],
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
