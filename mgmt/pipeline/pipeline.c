/* The analysis half of `vigild run` (vigild_pipeline.h). */
#include "pipeline_int.h"

/* Camera CAM's name, as alerts and the report give it. */
void pipeline_camera_label(const struct pipeline *p, unsigned cam, char *buf, size_t len)
{
	if (cam < DP_MAX_CAMERAS && p->conf.camera_name[cam] && *p->conf.camera_name[cam])
		snprintf(buf, len, "%s", p->conf.camera_name[cam]);
	else
		snprintf(buf, len, "cam%u", cam + 1);
}

/* The threshold an alert was judged against, as the matcher holds it (per alert, not per frame). */
const char *pipeline_watchlist_seal(const struct pipeline *p, uint32_t id)
{
	for (unsigned i = 0; i < p->n_watchlists; i++)
		if (p->watchlists[i].id == id)
			return p->watchlists[i].seal;
	return "";
}

float pipeline_threshold_of(const struct pipeline *p, uint32_t id)
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
	p->db = db;
	if (allowed != 1) {
		snprintf(object, sizeof(object), "deployment/%" PRId64, p->conf.deployment);
		snprintf(detail, sizeof(detail), "{\"allowed\":false,\"why\":\"not authorised and active now\"}");
		/* A run is audited like any other matching, refused or not. */
		mgmt_audit_append(db, &who, "run.recorded.refused", object, detail, NULL);
		return vg_errf(err, errlen, -EPERM, "deployment %" PRId64 " is not authorised and active now: matching refused",
			       p->conf.deployment);
	}

	/* The model the nets run: a watchlist enrolled with another is refused by the matcher's load. */
	struct match_db_conf mc = { .d = p->d, .metric = p->metric, .n_shards = 1,
				    .model = gpu_model_info_of(p->model)->id, .kernel = MATCH_KERNEL_AUTO };
	rc = match_db_open(&p->match, &mc, err, errlen);
	if (rc < 0)
		return rc;
#ifdef HAVE_VIGIL_GPU_CUDA
	/* With the nets on the GPU, the watchlist goes there too: descriptors are matched where the
	 * nets left them. If the GPU cannot take it, the CPU matches (the report says why). */
	if (p->gpu) {
		char why[128];

		if (gpu_cuda_match_attach(p->match, p->gpu_device, why, sizeof(why)) == 0) {
			p->match_on_device = true;
			snprintf(p->match_where, sizeof(p->match_where), "gpu");
		} else {
			snprintf(p->match_where, sizeof(p->match_where), "cpu: %s", why);
		}
	}
#endif
	/* Every watchlist the deployment's authorisation names, from custody, each whole or not at all. */
	rc = pipeline_custody_load(p, db, run_desc, err, errlen);
	if (rc < 0)
		return rc;
	rc = match_ctx_open(&p->ctx, p->match, 1, p->batch_max * MAX_FACES);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "matcher: %s", vg_strerror(rc));

	struct store_conf sc = { 0 };
	char dir[512], key[512];
	snprintf(dir, sizeof(dir), "%s/evidence", p->conf.state_dir);
	snprintf(key, sizeof(key), "%s/appliance.key", p->conf.state_dir);
	sc.dir = dir;
	sc.appliance_key_path = key;
	sc.create_appliance_key = true;
	struct mgmt_retention ret;
	/* The periods set with `vigilctl retention set` (the store's defaults where none was set). */
	if (mgmt_retention_get(p->db, &ret) == 0) {
		sc.retain_confirmed_s = ret.confirmed_s;
		sc.retain_rejected_s = ret.rejected_s;
		sc.retain_unreviewed_s = ret.unreviewed_s;
	}
	rc = store_open(&p->store, &sc, err, errlen);
	if (rc < 0)
		return rc;
	rc = store_deployment_open(p->store, (uint64_t)p->conf.deployment);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "evidence store: deployment %" PRId64 ": %s", p->conf.deployment,
			       vg_strerror(rc));
	/* Reviews recorded while no one held the store: their retention, before the first sweep. */
	pipeline_outcomes_apply(p->db, p->store);
	p->outcomes_ns = vg_clock_ns();
	return 0;
}

/* Every camera's queue, in one allocation made at open (a few hundred KiB for 256 cameras), so
 * that no queue appears while the analysis thread looks at the cameras. */
static int cameras_queues_init(struct pipeline *p)
{
	ssize_t ring_bytes = rte_ring_get_memsize_elem(sizeof(void *), p->conf.queue_depth);
	size_t stride;

	if (ring_bytes < 0)
		return (int)ring_bytes;
	stride = ((size_t)ring_bytes + 63) & ~(size_t)63;
	p->rings = aligned_alloc(64, stride * DP_MAX_CAMERAS);
	if (!p->rings)
		return -ENOMEM;
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		char name[RTE_RING_NAMESIZE];

		snprintf(name, sizeof(name), "analysis%u", i);
		p->cams[i].queue = (struct rte_ring *)((char *)p->rings + stride * i);
		/* Exact size: the ring holds queue_depth frames, as many as the camera has buffers. */
		int rc = rte_ring_init(p->cams[i].queue, name, p->conf.queue_depth,
				       RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/*
 * --gpu: the whole face pipeline on GPU 0 (gpu_cuda_faces), for batches of up to batch_max frames
 * of up to gpu_max_width x gpu_max_height; the matcher follows it there (authorise_and_load).
 */
static int gpu_open(struct pipeline *p, char *err, size_t errlen)
{
	/* indexed by gpu_cuda.h's mode: GPU_CUDA_EXACT, GPU_CUDA_FP32, GPU_CUDA_FP16; then "emulate",
	 * the exact mode's host emulation: the GPU's code path on the CPU, to check it without one */
	static const char *const modes[] = {"cuda-exact", "cuda", "cuda-fp16", "emulate"};
	enum { EMULATE = 3 };
	const char *g = p->conf.gpu;
	int mode = -1;

	if (!g || strcmp(g, "cpu") == 0)
		return 0;
	for (int i = 0; i < (int)VG_ARRAY_SIZE(modes); i++)
		if (strcmp(g, modes[i]) == 0)
			mode = i;
	if (mode < 0)
		return vg_errf(err, errlen, -EINVAL, "--gpu %s: not cpu, cuda, cuda-fp16, cuda-exact or emulate", g);
	p->gpu_device = mode == EMULATE ? -1 : GPU_DEVICE;
	mode = mode == EMULATE ? 0 : mode;
#ifdef HAVE_VIGIL_GPU_CUDA
	_Static_assert(GPU_CUDA_EXACT == 0 && GPU_CUDA_FP32 == 1 && GPU_CUDA_FP16 == 2 && EMULATE == 3,
		       "modes[] is gpu_cuda.h's order, then emulate");
	_Static_assert((int)GPU_CUDA_RGB24 == (int)FRAME_RGB24 && (int)GPU_CUDA_I420 == (int)FRAME_I420 &&
			       (int)GPU_CUDA_NV12 == (int)FRAME_NV12,
		       "frame_fmt is gpu_cuda.h's");
	{
		struct gpu_cuda_faces_conf gc = {
			.device = p->gpu_device, .mode = mode, .max_frames = (int)p->batch_max,
			.max_width = (int)p->conf.gpu_max_width, .max_height = (int)p->conf.gpu_max_height,
			.max_faces = MAX_FACES, .tiled = p->conf.tiled, .overlap = 192, .graphs = 1,
		};

		struct gpu_cuda_faces_stats st;
		int rc;

		rc = gpu_cuda_faces_create(&p->gpu, p->model, &gc, err, errlen);
		gpu_cuda_faces_stats_get(p->gpu, &st);
		p->gpu_bytes = st.device_bytes;
		return rc;
	}
#else
	return vg_errf(err, errlen, -ENOTSUP, "--gpu %s: this vigild was built without CUDA (no nvcc)", g);
#endif
}

bool pipeline_takes_device_frames(const struct pipeline *p, int device)
{
	return p && p->gpu && p->gpu_device >= 0 && device == p->gpu_device;
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
	if (!p->conf.queue_depth)
		p->conf.queue_depth = 4;
	if (p->conf.queue_depth > 64)
		p->conf.queue_depth = 64;
	/* A batch gathers frames of all cameras; on the CPU the nets gain nothing from it (default 1),
	 * on a GPU a batch keeps it busy (default 32). */
	bool on_gpu = p->conf.gpu && strcmp(p->conf.gpu, "cpu") != 0;
	p->batch_max = p->conf.batch ? p->conf.batch : on_gpu ? 32 : 1;
	p->batch_max = p->batch_max > BATCH_MAX ? BATCH_MAX : p->batch_max;
	p->batch_deadline_ns = (uint64_t)(p->conf.batch_deadline_ms ? p->conf.batch_deadline_ms : 10) * 1000000;
	if (!p->conf.gpu_max_width || !p->conf.gpu_max_height) {
		p->conf.gpu_max_width = 3840;
		p->conf.gpu_max_height = 2160;
	}
	snprintf(p->match_where, sizeof(p->match_where), "cpu");
	sem_init(&p->ready, 0, 0);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++)
		sem_init(&p->cams[i].slots, 0, p->conf.queue_depth);
	p->alerts = calloc(MAX_ALERTS, sizeof(*p->alerts));
	p->latency_us = calloc(LATENCY_SAMPLES, sizeof(*p->latency_us));
	rc = cameras_queues_init(p);
	if (rc == 0)
		rc = vg_counter_block_create(&p->counters, "analysis", analysis_counter_desc, ANALYSIS__COUNT,
					     DP_MAX_CAMERAS + 1);
	if (!p->alerts || !p->latency_us || rc < 0) {
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
		goto out_close;
	}
	rc = vg_pool_create(&p->crop_pool, "crop", (size_t)CROP_MAX * CROP_MAX * 3, 1, VG_POOL_BIOMETRIC);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "crop pool: %s", vg_strerror(rc));
		goto out_close;
	}
	p->crop = vg_pool_get(p->crop_pool);
	/* a batch's faces and their descriptors: biometric, zeroed as each batch retires */
	{
		size_t nf = (size_t)p->batch_max * MAX_FACES;
		size_t bytes = nf * (sizeof(struct gpu_face) + GPU_DESCRIPTOR_MAX * sizeof(float)); /* any model's */

		rc = vg_pool_create(&p->faces_pool, "faces", bytes, 1, VG_POOL_BIOMETRIC);
		if (rc < 0) {
			vg_errf(err, errlen, rc, "faces pool: %s", vg_strerror(rc));
			goto out_close;
		}
		p->faces = vg_pool_get(p->faces_pool);
		p->q = (float *)(p->faces + nf);
		p->keep = calloc(nf, sizeof(*p->keep));
		p->res = calloc(nf, sizeof(*p->res));
		if (!p->keep || !p->res) {
			rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
			goto out_close;
		}
	}
	rc = gpu_model_open(&p->model, conf->models_dir, err, errlen);
	if (rc < 0)
		goto out_close;
	/* the model decides the descriptor's size and metric: the matcher and templates follow it */
	p->d = gpu_model_info_of(p->model)->descriptor_dim;
	p->metric = gpu_model_info_of(p->model)->metric ? MATCH_METRIC_COSINE : MATCH_METRIC_L2;
	if (p->conf.track_fusion == 1)
		p->conf.track_fusion = 0; /* one sighting fused is the sighting: off */
	if (p->conf.track_fusion) {
		/* the tracks' templates: biometric, each zeroed when its track is over */
		if (p->conf.track_fusion > PIPELINE_FUSION_MAX) {
			rc = vg_errf(err, errlen, -EINVAL, "track fusion fuses 2 to %d sightings, not %u", PIPELINE_FUSION_MAX,
				     p->conf.track_fusion);
			goto out_close;
		}
		rc = vg_pool_create(&p->templates_pool, "templates",
				    pipeline_template_size(p->conf.track_fusion, p->d), TEMPLATES_MAX,
				    VG_POOL_BIOMETRIC);
		if (rc == 0)
			rc = vg_pool_create(&p->fused_pool, "fused", (size_t)MAX_FACES * p->d * sizeof(float), 1,
					    VG_POOL_BIOMETRIC);
		if (rc < 0) {
			vg_errf(err, errlen, rc, "templates pool: %s", vg_strerror(rc));
			goto out_close;
		}
		p->fused_q = vg_pool_get(p->fused_pool);
		p->fused_res = calloc(MAX_FACES, sizeof(*p->fused_res));
		if (!p->fused_res) {
			rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
			goto out_close;
		}
	}
	rc = gpu_open(p, err, errlen);
	if (rc < 0)
		goto out_close;
	/* A deployment to match for (or a watchlist named, which needs one): matching, authorised. */
	if (conf->watchlist_path || conf->deployment > 0) {
		rc = authorise_and_load(p, run_desc, err, errlen);
		if (rc < 0)
			goto out_close;
	}
	rc = -pthread_create(&p->analysis_thread, NULL, pipeline_analysis_main, p);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "analysis thread: %s", vg_strerror(rc));
		goto out_close;
	}
	p->row = vg_counter_block_row(p->counters, ROW_ANALYSIS);
	p->analysis_running = true;
	*out = p;
	return 0;
out_close:
	pipeline_close(&p);
	return rc;
}

void pipeline_close(struct pipeline **pp)
{
	struct pipeline *p = *pp;

	if (!p)
		return;
	pipeline_finish(p);
	if (p->conf.progress && p->last_progress_ns)
		fputc('\n', stderr);
	for (unsigned i = 0; i < DP_MAX_CAMERAS; i++) {
		pipeline_pool_pin(p, &p->cams[i], false);
		vg_pool_destroy(&p->cams[i].pool); /* every buffer is back, zeroed; this zeroes it all again */
		sws_freeContext(p->cams[i].sws);
		sem_destroy(&p->cams[i].slots);
	}
	sem_destroy(&p->ready);
	vg_counter_block_destroy(&p->counters);
	free(p->rings);
	free(p->latency_us);
	match_ctx_close(&p->ctx);
	match_db_close(&p->match); /* the watchlist, zeroed: the run's end purges it */
	store_close(&p->store);
	if (p->db && p->faces_scanned > p->scanned_reported)
		mgmt_deployment_add_scanned(p->db, p->conf.deployment, p->faces_scanned - p->scanned_reported);
	mgmt_db_close(&p->db);
#ifdef HAVE_VIGIL_GPU_CUDA
	gpu_cuda_faces_destroy(&p->gpu); /* zeroes the device's buffers first */
#endif
	vg_pool_destroy(&p->faces_pool);
	free(p->keep);
	free(p->res);
	gpu_model_close(&p->model);
	vg_pool_destroy(&p->crop_pool);
	vg_pool_destroy(&p->templates_pool);
	vg_pool_destroy(&p->fused_pool);
	free(p->fused_res);
	free(p->alerts);
	free(p);
	*pp = NULL;
}
