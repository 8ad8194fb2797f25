/*
 * The matcher's scan device (gpu_cuda.h: gpu_cuda_match_attach) against the CPU matcher. argv[1]
 * is the device: -1, the host emulation (suite unit, runs everywhere), or 0 (suite gpu: skips with
 * 77 where there is no GPU). For L2 and cosine, d 128:
 * - 17,012 entries over 3 shards, random and face-api-like (subjects of 3 entries at face-api's
 *   distances), duplicated vectors (ties, broken by enrolment order), four watchlists, loaded
 *   from a watchlist file then enrolled. A second matcher without a device, fed the same writes,
 *   is the oracle: batches of 1, 7, 64, 65 and 256, k 1 and 8, through match_query_device()
 *   (descriptors in device memory, left as they were) and match_query() give its subjects,
 *   enrolment numbers, ranks, passes and values bit for bit, served by the device (counted),
 *   after each of enrol, remove_subject, a threshold change, remove_watchlist, purge and load;
 * - a remove uploads a few KB (the bias arrays it touched, the table), not the watchlist;
 * - where a snapshot's device copy cannot be made: match_query_device() -ENODEV, match_query()
 *   on the CPU with the same answers (counted); a context opened then scans on the CPU; the next
 *   write makes the copy;
 * - bad descriptors (NaN, inf, > MATCH_VALUE_MAX, zero under cosine) and arguments: -EINVAL,
 *   nothing written; attaching after a context is open, or twice: -EBUSY;
 * - a writer (groups of 4 copies enrolled and removed whole, thresholds changed) racing a query
 *   thread: every answer is brute force over one whole version, never a mix;
 * - the census: no byte of scratch left nonzero after a search, every block zeroed before it was
 *   freed, nothing held after purge (but the empty table) and close; the stats' device_bytes is
 *   what the census counts.
 */
#include <cuda_runtime_api.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../matcher/match_brute.h"
#include "vg_test.h"
#include "gpu_cuda.h"
#include "match.h"

#define D 128
#define N_RAND 8000
#define N_IDS 3000               /* face-api-like subjects, 3 entries each */
#define N_DUP 12                 /* copies of entry 50 */
#define NE (N_RAND + 3 * N_IDS + N_DUP)
#define N_FILE 12000             /* from the watchlist file; the rest enrolled */
#define N_EXTRA 40               /* enrolled while the device cannot take them */
#define NQ 512
#define MAXB 256
#define MODEL "face-api-1.7.15"

static int device;
static enum match_metric metric;
static float ents[NE + N_EXTRA][D], qpool[NQ][D];
static char subj[NE + N_EXTRA][16];
static struct match_entry ent[NE + N_EXTRA];
static float *dq;                /* MAXB x D of the device's memory */
static struct match_db *ref, *dut;
static struct match_ctx *rctx, *dctx;
static const uint32_t wl_ids[4] = { 1, 2, 7, 9 };

/* ---- the device's memory for descriptors (host memory in the emulation) ---------------------- */

static float *qmem_new(size_t n)
{
	void *p = NULL;

	if (device < 0)
		return calloc(n, sizeof(float));
	return cudaMalloc(&p, n * sizeof(float)) == cudaSuccess ? p : NULL;
}

static void qmem_copy(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind)
{
	if (device < 0)
		memcpy(dst, src, n * sizeof(float));
	else
		CHECK(cudaMemcpy(dst, src, n * sizeof(float), kind) == cudaSuccess);
}

static void qmem_free(float *p, size_t n)
{
	if (device < 0) {
		memset(p, 0, n * sizeof(float));
		free(p);
	} else {
		cudaMemset(p, 0, n * sizeof(float));
		cudaFree(p);
	}
}

/* ---- data --------------------------------------------------------------------------------- */

static double gauss(uint64_t *s)
{
	double u = ((brute_rand(s) >> 11) + 1) * (1.0 / 9007199254740993.0), v = (brute_rand(s) >> 11) * (1.0 / 9007199254740992.0);

	return sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v);
}

/* A face-api-like descriptor: a shared mean (norm ~0.6) plus 0.06 per dimension, so that two
 * people are ~0.95 apart and a person's photos (JITTER 0.02) ~0.3, as face-api's are. */
static void face_like(uint64_t *s, const float *mean, float *out)
{
	for (unsigned k = 0; k < D; k++)
		out[k] = mean[k] + (float)(0.06 * gauss(s));
}

static void make_data(void)
{
	uint64_t s = 0x5eed;
	float mean[D], centre[N_IDS][D];
	unsigned n = 0;

	for (unsigned k = 0; k < D; k++)
		mean[k] = (float)(0.05 * gauss(&s));
	for (unsigned i = 0; i < N_IDS; i++)
		face_like(&s, mean, centre[i]);
	/* interleaved, so that a subject's entries land in different shards and segments */
	for (unsigned i = 0; i < N_RAND + 3 * N_IDS; i++, n++) {
		if (i % 2 == 0 && i / 2 < 3 * N_IDS) {
			unsigned id = (i / 2) / 3;

			for (unsigned k = 0; k < D; k++)
				ents[n][k] = centre[id][k] + (float)(0.02 * gauss(&s));
			snprintf(subj[n], sizeof(subj[n]), "f%u", id);
		} else {
			for (unsigned k = 0; k < D; k++)
				ents[n][k] = brute_randf(&s) * 0.3f;
			snprintf(subj[n], sizeof(subj[n]), "r%u", n);
		}
	}
	for (unsigned c = 0; c < N_DUP + N_EXTRA; c++, n++) { /* ties: copies of entry 50 under other names */
		memcpy(ents[n], ents[50], sizeof(ents[n]));
		snprintf(subj[n], sizeof(subj[n]), "dup%u", c % 5);
	}
	for (unsigned i = 0; i < NE + N_EXTRA; i++) /* the extra ones come after watchlist 7 is gone */
		ent[i] = (struct match_entry){ .subject = subj[i], .watchlist = i < NE ? wl_ids[i % 4] : 1, .desc = ents[i] };
	/* queries: a person seen again, an enrolled vector itself (ties), a stranger, noise */
	for (unsigned i = 0; i < NQ; i++) {
		switch (i % 4) {
		case 0:
			for (unsigned k = 0; k < D; k++)
				qpool[i][k] = centre[(i * 7) % N_IDS][k] + (float)(0.025 * gauss(&s));
			break;
		case 1:
			memcpy(qpool[i], ents[i % 8 == 1 ? 50 : (i * 131) % NE], sizeof(qpool[i]));
			break;
		case 2:
			face_like(&s, mean, qpool[i]);
			break;
		default:
			for (unsigned k = 0; k < D; k++)
				qpool[i][k] = brute_randf(&s) * 0.3f;
		}
	}
}

/* ---- the two matchers, fed the same writes ---------------------------------------------------- */

static void both_rc(int a, int b, const char *what)
{
	if (a != b)
		fprintf(stderr, "%s: the oracle says %d, the device's matcher %d\n", what, a, b);
	CHECK_EQ_INT(a, b);
}

static void w_enroll(const struct match_entry *e, unsigned n)
{
	char err[200];
	int a = match_enroll(ref, e, n, err, sizeof(err));

	both_rc(a, match_enroll(dut, e, n, err, sizeof(err)), "enroll");
	CHECK_EQ_INT(a, n);
}

static float threshold(unsigned w)
{
	static const float l2[4] = { 0.6f, 0.4f, 0.8f, 1.2f }, cosine[4] = { 0.9f, 0.8f, 0.5f, 0.95f };

	return metric == MATCH_METRIC_L2 ? l2[w] : cosine[w];
}

static void w_load(const void *buf, size_t len)
{
	char err[200];
	int a = match_load(ref, buf, len, err, sizeof(err));

	both_rc(a, match_load(dut, buf, len, err, sizeof(err)), "load");
	CHECK_EQ_INT(a, N_FILE);
}

static struct match_stats stats(void)
{
	struct match_stats s;

	match_stats_get(dut, &s);
	return s;
}

static struct gpu_cuda_match_census census(void)
{
	struct gpu_cuda_match_census c;

	gpu_cuda_match_census(&c);
	return c;
}

/* ---- queries --------------------------------------------------------------------------------- */

static unsigned differ(const struct match_result *a, const struct match_result *b, unsigned n)
{
	unsigned bad = 0;

	for (unsigned j = 0; j < n; j++) {
		if (a[j].n != b[j].n) {
			bad++;
			continue;
		}
		for (unsigned i = 0; i < a[j].n; i++) {
			const struct match_hit *x = &a[j].hit[i], *y = &b[j].hit[i];

			bad += strcmp(x->subject, y->subject) != 0 || x->watchlist != y->watchlist || x->seq != y->seq ||
			       x->pass != y->pass || memcmp(&x->value, &y->value, sizeof(float)) != 0;
		}
	}
	return bad;
}

/*
 * Every batch size and k (FULL; else 7 and 65 at k 8) through both of the device matcher's paths
 * against the oracle. ON_DEVICE: the snapshot has its device copy (else -ENODEV, and match_query
 * scans on the CPU). Then no byte of scratch may be left nonzero.
 */
static void battery(const char *what, bool full, bool on_device)
{
	static const unsigned batches[] = { 1, 7, 64, 65, 256 };
	static struct match_result want[MAXB], got[MAXB];
	static float back[MAXB * D];
	struct match_stats s0 = stats(), s1;
	unsigned bad = 0, off = 0, nq = 0, pending;
	struct gpu_cuda_match_census c;

	for (unsigned b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		unsigned nb = batches[b];

		if (!full && nb != 7 && nb != 65)
			continue;
		for (unsigned k = full ? 1 : MATCH_K_MAX; k <= MATCH_K_MAX; k += MATCH_K_MAX - 1) {
			const float *q = qpool[off];

			off = (off + 97) % (NQ - MAXB);
			CHECK_EQ_INT(match_query(rctx, q, nb, k, want), nb);
			qmem_copy(dq, q, (size_t)nb * D, cudaMemcpyHostToDevice);
			memset(got, 0xa5, sizeof(got));
			if (on_device) {
				CHECK_EQ_INT(match_query_device(dctx, dq, nb, k, got), nb);
				bad += differ(want, got, nb);
				qmem_copy(back, dq, (size_t)nb * D, cudaMemcpyDeviceToHost);
				CHECK(memcmp(back, q, (size_t)nb * D * sizeof(float)) == 0); /* Q is the caller's */
				nq += nb;
			} else {
				CHECK_EQ_INT(match_query_device(dctx, dq, nb, k, got), -ENODEV);
				CHECK_EQ_INT(got[0].n, 0xa5a5a5a5u);
			}
			memset(got, 0xa5, sizeof(got));
			CHECK_EQ_INT(match_query(dctx, q, nb, k, got), nb);
			bad += differ(want, got, nb);
			nq += nb;
		}
	}
	if (bad)
		fprintf(stderr, "%s, %s: %u results differ from the CPU matcher's\n",
			metric == MATCH_METRIC_L2 ? "l2" : "cosine", what, bad);
	CHECK_EQ_INT(bad, 0);
	s1 = stats();
	pending = on_device ? 0 : nq;
	CHECK_EQ_INT(s1.device_queries - s0.device_queries, nq - pending);
	CHECK_EQ_INT(s1.device_fallbacks - s0.device_fallbacks, pending);
	CHECK_EQ_INT(s1.device_snapshot, on_device);
	c = census();
	CHECK_EQ_INT(c.scratch_dirty, 0);
	CHECK_EQ_INT(c.freed_dirty, 0);
	CHECK_EQ_INT(s1.device_bytes, c.gallery_bytes + c.scratch_bytes);
}

static void bad_descriptors(void)
{
	static struct match_result got[8], pattern[8];
	float q[7 * D];
	const float bad[] = { NAN, INFINITY, -2e16f, 0.0f };
	uint64_t refused = stats().refused;

	memset(pattern, 0x5a, sizeof(pattern));
	for (unsigned c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
		memcpy(q, qpool[10], sizeof(q));
		if (bad[c] == 0.0f)
			memset(q + 6 * D, 0, D * sizeof(float));
		else
			q[6 * D + 77] = bad[c];
		qmem_copy(dq, q, 7 * D, cudaMemcpyHostToDevice);
		if (bad[c] == 0.0f && metric == MATCH_METRIC_L2) { /* a zero vector is a descriptor under L2 */
			static struct match_result want[7];

			CHECK_EQ_INT(match_query(rctx, q, 7, 8, want), 7);
			CHECK_EQ_INT(match_query_device(dctx, dq, 7, 8, got), 7);
			CHECK_EQ_INT(differ(want, got, 7), 0);
			continue;
		}
		memcpy(got, pattern, sizeof(got));
		CHECK_EQ_INT(match_query_device(dctx, dq, 7, 8, got), -EINVAL);
		CHECK(memcmp(got, pattern, sizeof(got)) == 0);
		CHECK_EQ_INT(match_query(dctx, q, 7, 8, got), -EINVAL);
		CHECK(memcmp(got, pattern, sizeof(got)) == 0);
		refused += 2;
	}
	memcpy(got, pattern, sizeof(got));
	CHECK_EQ_INT(match_query_device(dctx, dq, MAXB + 1, 8, got), -EINVAL);
	CHECK_EQ_INT(match_query_device(dctx, dq, 1, 0, got), -EINVAL);
	CHECK_EQ_INT(match_query_device(dctx, dq, 1, MATCH_K_MAX + 1, got), -EINVAL);
	CHECK_EQ_INT(match_query_device(dctx, NULL, 1, 8, got), -EINVAL);
	CHECK(memcmp(got, pattern, sizeof(got)) == 0);
	CHECK_EQ_INT(stats().refused, refused + 4);
	CHECK_EQ_INT(census().scratch_dirty, 0);
}

/* ---- one metric, start to end --------------------------------------------------------------- */

static void run_metric(enum match_metric m)
{
	struct match_db_conf conf = { .d = D, .metric = m, .n_shards = 3, .model = MODEL };
	struct match_watchlist_def wl[4];
	struct match_ctx *early = NULL, *late = NULL;
	struct gpu_cuda_match_census c0, c1;
	static struct match_result want[8], got[8];
	void *file = NULL;
	size_t file_len = 0;
	char err[200];
	int rc;

	metric = m;
	for (unsigned w = 0; w < 4; w++)
		wl[w] = (struct match_watchlist_def){ .id = wl_ids[w], .threshold = threshold(w) };
	CHECK_EQ_INT(match_file_encode(MODEL, D, m, wl, 4, ent, N_FILE, &file, &file_len, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_db_open(&ref, &conf, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_db_open(&dut, &conf, err, sizeof(err)), 0);
	if (!file || !ref || !dut)
		return;

	/* Attach before any context is opened, and once. */
	CHECK_EQ_INT(match_ctx_open(&early, dut, 1, 4), 0);
	CHECK_EQ_INT(gpu_cuda_match_attach(dut, device, err, sizeof(err)), -EBUSY);
	match_ctx_close(&early);
	rc = gpu_cuda_match_attach(dut, device, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "attach: %s\n", err);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(gpu_cuda_match_attach(dut, device, err, sizeof(err)), -EBUSY);
	CHECK(stats().device && stats().device_snapshot);
	CHECK_EQ_INT(match_ctx_open(&rctx, ref, 1, MAXB), 0);
	CHECK_EQ_INT(match_ctx_open(&dctx, dut, 1, MAXB), 0);
	if (!rctx || !dctx)
		return;

	/* The watchlist from a file, then enrolled, then ties added. */
	w_load(file, file_len);
	w_enroll(ent + N_FILE, NE - N_FILE);
	CHECK_EQ_INT(stats().entries, NE);
	battery("loaded and enrolled", true, true);

	/* A remove uploads the bias arrays it touched and the table: a few KB of 8.7 MB. */
	c0 = census();
	rc = match_remove_subject(ref, "f17");
	both_rc(rc, match_remove_subject(dut, "f17"), "remove f17");
	CHECK_EQ_INT(rc, 3);
	c1 = census();
	fprintf(stderr, "%s: remove of 3 entries of %u uploaded %llu bytes\n", m == MATCH_METRIC_L2 ? "l2" : "cosine",
		NE, (unsigned long long)(c1.uploaded_bytes - c0.uploaded_bytes));
	CHECK(c1.uploaded_bytes > c0.uploaded_bytes && c1.uploaded_bytes - c0.uploaded_bytes <= 64 * 1024);
	for (unsigned i = 0; i < 5; i++) {
		char name[16];

		snprintf(name, sizeof(name), i < 3 ? "dup%u" : "f%u", i < 3 ? i : 100 + i);
		both_rc(match_remove_subject(ref, name), match_remove_subject(dut, name), name);
	}
	battery("after removes", false, true);
	CHECK_EQ_INT(match_watchlist_set(ref, 2, threshold(2)), 0);
	CHECK_EQ_INT(match_watchlist_set(dut, 2, threshold(2)), 0);
	battery("after a threshold change", false, true);
	both_rc(match_remove_watchlist(ref, 7), match_remove_watchlist(dut, 7), "remove watchlist 7");
	battery("after remove_watchlist", false, true);

	/* The device cannot take the next snapshot: the CPU serves, counted, and the next write heals. */
	gpu_cuda_match_fail_allocs(1u << 30);
	w_enroll(ent + NE, N_EXTRA);
	battery("without a device copy", false, false);
	CHECK_EQ_INT(match_ctx_open(&late, dut, 1, 8), 0);
	if (late) {
		CHECK_EQ_INT(match_query(rctx, qpool[1], 8, 8, want), 8);
		CHECK_EQ_INT(match_query_device(late, dq, 8, 8, got), -ENODEV);
		CHECK_EQ_INT(match_query(late, qpool[1], 8, 8, got), 8);
		CHECK_EQ_INT(differ(want, got, 8), 0);
		match_ctx_close(&late);
	}
	gpu_cuda_match_fail_allocs(1); /* one upload short */
	CHECK_EQ_INT(match_watchlist_set(ref, 9, threshold(1)), 0);
	CHECK_EQ_INT(match_watchlist_set(dut, 9, threshold(1)), 0);
	CHECK(!stats().device_snapshot);
	gpu_cuda_match_fail_allocs(0);
	CHECK_EQ_INT(match_watchlist_set(ref, 9, threshold(3)), 0);
	CHECK_EQ_INT(match_watchlist_set(dut, 9, threshold(3)), 0);
	battery("device copy made again", false, true);
	bad_descriptors();

	/* Purge: nothing left on the device but an empty table; then the file again. */
	CHECK_EQ_INT(match_purge(ref), 0);
	CHECK_EQ_INT(match_purge(dut), 0);
	CHECK_EQ_INT(census().gallery_bytes, 0);
	battery("purged", false, true);
	w_load(file, file_len);
	battery("loaded again", false, true);

	match_ctx_close(&dctx);
	match_ctx_close(&rctx);
	match_db_close(&dut);
	match_db_close(&ref);
	c1 = census();
	CHECK_EQ_INT(c1.gallery_bytes, 0);
	CHECK_EQ_INT(c1.scratch_bytes, 0);
	CHECK_EQ_INT(c1.freed_dirty, 0);
	memset(file, 0, file_len);
	free(file);
}

/* ---- a writer racing a query thread ----------------------------------------------------------- */

#define RB 1200                  /* base entries: two per subject */
#define ROPS 90
#define RGRP 4                   /* an enrolment: 4 copies of one vector, added and removed whole */
#define RNE (RB + ROPS * RGRP)
#define RPROBES 16
#define RRECS 3000

static float rv[RNE][D], rprobe[RPROBES][D];
static char rname[RNE][16];
static uint64_t rseq[RNE];
static unsigned char rlive[ROPS + 1][RNE];
static float rthr[ROPS + 1];
static float rkey[RPROBES][RNE], rval[RPROBES][RNE];
static _Atomic unsigned rdone, rbegun; /* ops done; queries begun */
static struct match_db *rdb;

struct rrec {
	unsigned a, b, p;   /* ops done at start and end; probes p and p + 1 */
	struct match_result res[2];
};

static struct rrec rrecs[RRECS];
static unsigned nrrecs;

/* What op I does: enrol group I, remove group I - 4 (or a base subject), or change the threshold. */
static int rop(unsigned i)
{
	return i % 3;
}

static void *rwriter(void *arg)
{
	char err[200];

	for (unsigned i = 0, seen = 0; i < ROPS; i++) {
		struct match_entry e[RGRP];

		/* each write while a query runs: wait for one to begin (the reader never waits) */
		while (atomic_load(&rbegun) == seen)
			sched_yield();
		seen = atomic_load(&rbegun);
		switch (rop(i)) {
		case 0:
			for (unsigned c = 0; c < RGRP; c++)
				e[c] = (struct match_entry){ rname[RB + i * RGRP], 1, rv[RB + i * RGRP + c] };
			if (match_enroll(rdb, e, RGRP, err, sizeof(err)) != RGRP)
				vg_test_failures++;
			break;
		case 1:
			if (match_remove_subject(rdb, i >= 4 ? rname[RB + (i - 4) * RGRP] : rname[2 * i]) <= 0)
				vg_test_failures++;
			break;
		default:
			if (match_watchlist_set(rdb, 1, rthr[i + 1]) < 0)
				vg_test_failures++;
		}
		atomic_store(&rdone, i + 1);
	}
	return arg;
}

static void *rreader(void *arg)
{
	struct match_ctx *ctx = NULL;
	float *q = qmem_new(2 * D);

	if (!q || match_ctx_open(&ctx, rdb, 1, 2) < 0) {
		vg_test_failures++;
		return arg;
	}
	for (nrrecs = 0; nrrecs < RRECS; nrrecs++) {
		struct rrec *r = &rrecs[nrrecs];
		int rc;

		r->p = nrrecs % (RPROBES - 1);
		atomic_fetch_add(&rbegun, 1);
		r->a = atomic_load(&rdone);
		if (nrrecs % 2) {
			qmem_copy(q, rprobe[r->p], 2 * D, cudaMemcpyHostToDevice);
			rc = match_query_device(ctx, q, 2, 8, r->res);
		} else {
			rc = match_query(ctx, rprobe[r->p], 2, 8, r->res);
		}
		r->b = atomic_load(&rdone);
		if (rc != 2)
			vg_test_failures++;
		if (r->a == ROPS) {
			nrrecs++;
			break;
		}
	}
	match_ctx_close(&ctx);
	qmem_free(q, 2 * D);
	return arg;
}

/* Whether R's answer to probe P + J is brute force over version V. */
static bool rversion(const struct rrec *r, unsigned j, unsigned v)
{
	const struct match_result *res = &r->res[j];
	unsigned p = r->p + j, top[8], n = 0;

	for (unsigned i = 0; i < RNE; i++) {
		unsigned at = n;

		if (!rlive[v][i])
			continue;
		while (at > 0 && (rkey[p][top[at - 1]] > rkey[p][i] ||
				  (rkey[p][top[at - 1]] == rkey[p][i] && rseq[top[at - 1]] > rseq[i])))
			at--;
		if (at >= 8)
			continue;
		n += n < 8;
		memmove(top + at + 1, top + at, (n - 1 - at) * sizeof(*top));
		top[at] = i;
	}
	if (res->n != n)
		return false;
	for (unsigned h = 0; h < n; h++) {
		const struct match_hit *x = &res->hit[h];

		if (x->seq != rseq[top[h]] || strcmp(x->subject, rname[top[h]]) != 0 ||
		    memcmp(&x->value, &rval[p][top[h]], sizeof(float)) != 0 || x->pass != (rval[p][top[h]] <= rthr[v]))
			return false;
	}
	return true;
}

static void race(void)
{
	struct match_db_conf conf = { .d = D, .metric = MATCH_METRIC_L2, .n_shards = 2, .model = MODEL };
	struct match_entry e[RB];
	pthread_t w, r;
	uint64_t s = 77, seq = 1;
	unsigned failed = 0, raced = 0;
	char err[200];

	for (unsigned p = 0; p < RPROBES; p++)
		for (unsigned k = 0; k < D; k++)
			rprobe[p][k] = brute_randf(&s) * 0.1f;
	for (unsigned i = 0; i < RNE; i++) {
		const float *near = rprobe[(i < RB ? i : (i - RB) / RGRP) % RPROBES];

		for (unsigned k = 0; k < D; k++) /* a group's copies are one vector: ties within it */
			rv[i][k] = i >= RB && (i - RB) % RGRP ? rv[i - 1][k]
							      : near[k] + brute_randf(&s) * (i < RB ? 0.03f : 0.005f);
		snprintf(rname[i], sizeof(rname[i]), i < RB ? "b%u" : "g%u", i < RB ? i / 2 : (i - RB) / RGRP);
	}
	/* The versions: who is live and the threshold after each op, replayed from the op list. */
	rthr[0] = 0.2f; /* base entries are ~0.2 from their probe, groups ~0.03: passes flip */
	for (unsigned i = 0; i < RB; i++) {
		rlive[0][i] = 1;
		rseq[i] = seq++;
		e[i] = (struct match_entry){ rname[i], 1, rv[i] };
	}
	for (unsigned i = 0; i < ROPS; i++) {
		memcpy(rlive[i + 1], rlive[i], RNE);
		rthr[i + 1] = rop(i) == 2 ? 0.15f + 0.0012f * i : rthr[i];
		for (unsigned c = 0; c < RGRP && rop(i) == 0; c++) {
			rlive[i + 1][RB + i * RGRP + c] = 1;
			rseq[RB + i * RGRP + c] = seq++;
		}
		for (unsigned c = 0; c < RGRP && rop(i) == 1; c++) {
			if (i >= 4)
				rlive[i + 1][RB + (i - 4) * RGRP + c] = 0;
			else if (c < 2)
				rlive[i + 1][2 * i + c] = 0;
		}
	}
	for (unsigned p = 0; p < RPROBES; p++)
		for (unsigned i = 0; i < RNE; i++) {
			double sum = 0;

			rkey[p][i] = brute_key(rprobe[p], rv[i], D, MATCH_METRIC_L2);
			for (unsigned k = 0; k < D; k++) /* match_query.c's value_of() */
				sum += (rprobe[p][k] - (double)rv[i][k]) * (rprobe[p][k] - (double)rv[i][k]);
			rval[p][i] = (float)sqrt(sum);
		}

	CHECK_EQ_INT(match_db_open(&rdb, &conf, err, sizeof(err)), 0);
	CHECK_EQ_INT(gpu_cuda_match_attach(rdb, device, err, sizeof(err)), 0);
	CHECK_EQ_INT(match_watchlist_set(rdb, 1, rthr[0]), 0);
	CHECK_EQ_INT(match_enroll(rdb, e, RB, err, sizeof(err)), RB);
	pthread_create(&r, NULL, rreader, NULL);
	pthread_create(&w, NULL, rwriter, NULL);
	pthread_join(w, NULL);
	pthread_join(r, NULL);
	for (unsigned n = 0; n < nrrecs; n++) {
		const struct rrec *c = &rrecs[n];
		unsigned hi = c->b + 1 > ROPS ? ROPS : c->b + 1;
		bool ok = false;

		/* the snapshot seen was published after op a finished and before op b + 1 did */
		for (unsigned v = c->a; v <= hi && !ok; v++)
			ok = rversion(c, 0, v) && rversion(c, 1, v);
		failed += !ok;
		raced += c->a != c->b;
	}
	fprintf(stderr, "race: %u queries, %u of them during a write, %u matching no one version\n", nrrecs, raced,
		failed);
	CHECK(nrrecs > 0 && rrecs[0].a < ROPS);
	CHECK_EQ_INT(failed, 0);
	struct match_stats st;

	match_stats_get(rdb, &st);
	CHECK_EQ_INT(st.device_queries, 2 * nrrecs);
	CHECK_EQ_INT(st.device_fallbacks, 0);
	match_db_close(&rdb);
}

int main(int argc, char **argv)
{
	int n;

	device = argc > 1 ? atoi(argv[1]) : -1;
	if (device >= 0) {
		n = gpu_cuda_device_count();
		if (n < 0) {
			fprintf(stderr, "cuda: %s\n", gpu_cuda_last_error());
			return 1;
		}
		if (n <= device) {
			fprintf(stderr, "cuda: no CUDA device %d here: skipped\n", device);
			return VG_TEST_SKIP;
		}
	}
	make_data();
	dq = qmem_new((size_t)MAXB * D);
	if (!dq)
		return 1;
	run_metric(MATCH_METRIC_L2);
	run_metric(MATCH_METRIC_COSINE);
	race();
	qmem_free(dq, (size_t)MAXB * D);
	struct gpu_cuda_match_census c = census();

	CHECK_EQ_INT(c.gallery_bytes + c.scratch_bytes, 0);
	CHECK_EQ_INT(c.freed_dirty, 0);
	CHECK(c.freed > 0);
	return vg_test_exit();
}
