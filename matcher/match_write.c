/*
 * The matcher's writers: watchlists, enrolment, removal by subject or watchlist, purge. Each
 * builds a draft snapshot under db->writer (match_snap.c), keeps its shards short and dense, and
 * publishes it; a refused or failed write publishes nothing. A scan never takes db->writer.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

static uint64_t subject_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}
/* Insert or update watchlist ID in a draft (its wl array has room for one more). */
static void wl_put(struct match_snap *s, uint32_t id, float threshold)
{
	struct match_wl *w = match_wl_find(s, id);
	unsigned i;

	if (w) {
		w->threshold = threshold;
		return;
	}
	for (i = s->n_wl; i > 0 && s->wl[i - 1].id > id; i--)
		s->wl[i] = s->wl[i - 1];
	s->wl[i] = (struct match_wl){ .id = id, .threshold = threshold, .live = 0 };
	s->n_wl++;
}

/* ---- Shard maintenance -------------------------------------------------------------------------- */

/* A new segment with the live entries of SRC[0..n) in order, or NULL on -ENOMEM. */
static int segs_merge(struct match_db *db, const struct match_segv *src, unsigned n, struct match_segv *out)
{
	uint32_t live = 0;
	float v[MATCH_D_MAX];

	for (unsigned i = 0; i < n; i++)
		live += src[i].bias->live;
	out->seg = match_seg_new(db, live);
	out->bias = out->seg ? match_bias_new(out->seg->cap) : NULL;
	if (!out->bias) {
		match_seg_free(db, out->seg);
		return -ENOMEM;
	}
	for (unsigned i = 0; i < n; i++)
		for (uint32_t e = 0; e < src[i].seg->n; e++) {
			if (isinf(src[i].bias->v[e]))
				continue;
			match_seg_get(src[i].seg, e, v);
			match_seg_append(out->seg, out->bias, v, src[i].bias->v[e], &src[i].seg->meta[e]);
		}
	return 0;
}

/*
 * Keep a shard's segment list short and dense after a write: drop empty segments, rewrite one
 * that is less than half live, and merge the last two while the older is at most twice the newer
 * and both fit in MATCH_SEG_TARGET (a binary counter: each entry is copied O(log) times). Copies
 * at most MATCH_SEG_TARGET entries per merge. A segment it replaces stays owned by the old
 * snapshot (freed at publication); one made here and replaced again is freed at once.
 */
static int shard_tidy(struct match_db *db, struct match_shardv *sh, uint64_t fresh)
{
	unsigned w = 0;

	for (unsigned i = 0; i < sh->n_segs; i++) {
		struct match_segv sv = sh->segs[i];

		if (sv.bias->live == 0) {
			if (sv.seg->mark == fresh)
				match_seg_free(db, sv.seg);
			if (sv.bias->mark == fresh)
				match_bias_free(db, sv.bias);
			continue;
		}
		if (sv.bias->live * 2 < sv.seg->n && sv.seg->n >= MATCH_SEG_GROUP) {
			struct match_segv nv;

			if (segs_merge(db, &sv, 1, &nv) < 0)
				return -ENOMEM;
			nv.seg->mark = fresh;
			nv.bias->mark = fresh;
			if (sv.seg->mark == fresh)
				match_seg_free(db, sv.seg);
			if (sv.bias->mark == fresh)
				match_bias_free(db, sv.bias);
			sv = nv;
		}
		sh->segs[w++] = sv;
	}
	sh->n_segs = w;
	while (sh->n_segs >= 2) {
		struct match_segv *a = &sh->segs[sh->n_segs - 2], *b = &sh->segs[sh->n_segs - 1], nv;

		if (a->bias->live + b->bias->live > MATCH_SEG_TARGET || a->bias->live > 2 * b->bias->live)
			break;
		if (segs_merge(db, a, 2, &nv) < 0)
			return -ENOMEM;
		nv.seg->mark = fresh;
		nv.bias->mark = fresh;
		for (int i = 0; i < 2; i++) {
			if (a[i].seg->mark == fresh)
				match_seg_free(db, a[i].seg);
			if (a[i].bias->mark == fresh)
				match_bias_free(db, a[i].bias);
		}
		*a = nv;
		sh->n_segs--;
	}
	return 0;
}
/* ---- Writers ------------------------------------------------------------------------------------ */

int match_watchlist_set(struct match_db *db, uint32_t id, float threshold)
{
	struct match_snap *nw;

	if (!isfinite(threshold)) {
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
		return -EINVAL;
	}
	pthread_mutex_lock(&db->writer);
	nw = match_snap_clone(db, atomic_load_explicit(&db->snap, memory_order_relaxed), 0);
	if (!nw) {
		pthread_mutex_unlock(&db->writer);
		return -ENOMEM;
	}
	wl_put(nw, id, threshold);
	match_snap_publish(db, nw);
	pthread_mutex_unlock(&db->writer);
	return 0;
}

/* Validate everything first: a refused batch changes nothing. */
static int enroll_check(const struct match_db *db, const struct match_snap *old, const struct match_watchlist_def *wl,
			unsigned n_wl, const struct match_entry *e, unsigned n, char *err, size_t errlen)
{
	for (unsigned i = 0; i < n; i++) {
		size_t len = e[i].subject ? strnlen(e[i].subject, MATCH_SUBJECT_MAX + 1) : 0;
		double ss;
		bool known = false;

		if (len == 0 || len > MATCH_SUBJECT_MAX)
			return vg_errf(err, errlen, -EINVAL, "entry %u: subject must be 1..%u bytes", i, MATCH_SUBJECT_MAX);
		if (!e[i].desc)
			return vg_errf(err, errlen, -EINVAL, "entry %u: no descriptor", i);
		ss = match_desc_check(e[i].desc, db->d);
		if (ss < 0)
			return vg_errf(err, errlen, -EINVAL, "entry %u: descriptor has a NaN, infinite or out-of-range value", i);
		if (db->metric == MATCH_METRIC_COSINE && !(ss > 0))
			return vg_errf(err, errlen, -EINVAL, "entry %u: zero descriptor under cosine", i);
		for (unsigned w = 0; w < n_wl && !known; w++)
			known = wl[w].id == e[i].watchlist;
		if (!known && !match_wl_find(old, e[i].watchlist))
			return vg_errf(err, errlen, -ENOENT, "entry %u: unknown watchlist %u", i, e[i].watchlist);
	}
	return 0;
}

/*
 * Spread the batch: each entry to the shard with the fewest live entries. O(n * shards).
 * PER_SHARD[s] is how many shard s takes; returns the most new segments one shard needs.
 */
static unsigned enroll_spread(const struct match_db *db, const struct match_snap *old, unsigned n, uint32_t *per_shard)
{
	unsigned extra = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned best = 0;

		for (unsigned s = 1; s < db->n_shards; s++)
			if (old->shard[s].live + per_shard[s] < old->shard[best].live + per_shard[best])
				best = s;
		per_shard[best]++;
	}
	for (unsigned s = 0; s < db->n_shards; s++) {
		unsigned segs = (per_shard[s] + MATCH_SEG_TARGET - 1) / MATCH_SEG_TARGET;

		extra = segs > extra ? segs : extra;
	}
	return extra;
}

/* Append entry EN to SV as seq SEQ: unit length under cosine, raw with ||x||^2 as its bias under L2. */
static void enroll_one(const struct match_db *db, struct match_snap *nw, struct match_segv *sv,
		       const struct match_entry *en, uint64_t seq)
{
	struct match_meta meta = { 0 };
	float v[MATCH_D_MAX];
	double ss = 0;
	float bias = 0;

	ss = match_desc_check(en->desc, db->d);
	if (db->metric == MATCH_METRIC_COSINE) {
		double inv = 1.0 / sqrt(ss);

		for (unsigned k = 0; k < db->d; k++)
			v[k] = (float)(en->desc[k] * inv);
	} else {
		memcpy(v, en->desc, db->d * sizeof(float));
		bias = (float)ss;
	}
	meta.seq = seq;
	meta.hash = subject_hash(en->subject);
	meta.watchlist = en->watchlist;
	strcpy(meta.subject, en->subject);
	match_seg_append(sv->seg, sv->bias, v, bias, &meta);
	match_wl_find(nw, en->watchlist)->live++;
}

int match_enroll_locked(struct match_db *db, const struct match_watchlist_def *wl, unsigned n_wl,
			const struct match_entry *e, unsigned n, char *err, size_t errlen)
{
	struct match_snap *old = atomic_load_explicit(&db->snap, memory_order_relaxed), *nw;
	uint32_t per_shard[MATCH_SHARDS_MAX] = { 0 };
	unsigned extra;
	int rc;

	rc = enroll_check(db, old, wl, n_wl, e, n, err, errlen);
	if (rc < 0)
		return rc;
	extra = enroll_spread(db, old, n, per_shard);
	nw = match_snap_clone(db, old, extra);
	if (!nw)
		return -ENOMEM;
	if (n_wl) {
		struct match_wl *grown = realloc(nw->wl, (nw->n_wl + n_wl + 1) * sizeof(*grown));

		if (!grown) {
			match_snap_free_arrays(db, nw);
			return -ENOMEM;
		}
		nw->wl = grown;
		for (unsigned w = 0; w < n_wl; w++)
			wl_put(nw, wl[w].id, wl[w].threshold);
	}
	uint64_t fresh = ~0ull - 1; /* the mark of segments made by this write, until published */
	unsigned next = 0;         /* the next entry to place */
	uint64_t seq = db->next_seq;

	for (unsigned s = 0; s < db->n_shards; s++) {
		uint32_t left = per_shard[s];

		while (left) {
			uint32_t cnt = left < MATCH_SEG_TARGET ? left : MATCH_SEG_TARGET;
			struct match_segv sv;

			sv.seg = match_seg_new(db, cnt);
			sv.bias = sv.seg ? match_bias_new(sv.seg->cap) : NULL;
			if (!sv.bias) {
				match_seg_free(db, sv.seg);
				rc = -ENOMEM;
				goto out_discard;
			}
			sv.seg->mark = fresh;
			sv.bias->mark = fresh;
			nw->shard[s].segs[nw->shard[s].n_segs++] = sv;
			/* entries go to shards in the order of the batch, so seq follows it per shard */
			for (uint32_t c = 0; c < cnt; c++) {
				/* shard s takes the next per_shard[s] entries of the batch, in order */
				enroll_one(db, nw, &sv, &e[next++], seq++);
			}
			left -= cnt;
		}
		rc = shard_tidy(db, &nw->shard[s], fresh);
		if (rc < 0)
			goto out_discard;
	}
	db->next_seq = seq;
	match_snap_publish(db, nw);
	return (int)n;
out_discard:
	match_snap_discard(db, nw, old);
	return rc;
}

int match_enroll(struct match_db *db, const struct match_entry *e, unsigned n, char *err, size_t errlen)
{
	int rc;

	if (n > INT32_MAX)
		return -EINVAL;
	pthread_mutex_lock(&db->writer);
	rc = match_enroll_locked(db, NULL, 0, e, n, err, errlen);
	pthread_mutex_unlock(&db->writer);
	if (rc == -EINVAL || rc == -ENOENT)
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
	return rc;
}

/*
 * Tombstone every entry for which MATCH(meta) holds (and, if BY_HASH, whose subject hash is HASH):
 * copy the bias array of each segment that has one (4 bytes per entry), then tidy the shard.
 * Visits every entry: O(entries) per call; by subject it reads the dense hash array only, 8 bytes
 * per entry (800 KB at 100k entries), so that churn does not eat the scans' memory bandwidth.
 */
static int remove_where(struct match_db *db, bool (*match)(const struct match_meta *, const void *), const void *arg,
			bool by_hash, uint64_t hash, struct match_snap *nw, const struct match_snap *old)
{
	uint64_t fresh = ~0ull - 1;
	int removed = 0;

	for (unsigned s = 0; s < nw->n_shards; s++) {
		bool touched = false;

		for (unsigned j = 0; j < nw->shard[s].n_segs; j++) {
			struct match_segv *sv = &nw->shard[s].segs[j];
			struct match_bias *b = NULL;

			for (uint32_t i = 0; i < sv->seg->n; i++) {
				if ((by_hash && sv->seg->hash[i] != hash) || isinf(sv->bias->v[i]) ||
				    !match(&sv->seg->meta[i], arg))
					continue;
				if (!b) {
					b = match_bias_dup(sv->bias);
					if (!b)
						goto out_nomem;
					b->mark = fresh;
				}
				b->v[i] = INFINITY;
				b->live--;
				removed++;
				match_wl_find(nw, sv->seg->meta[i].watchlist)->live--;
			}
			if (b) {
				sv->bias = b;
				touched = true;
			}
		}
		if (touched && shard_tidy(db, &nw->shard[s], fresh) < 0)
			goto out_nomem;
	}
	return removed;
out_nomem:
	match_snap_discard(db, nw, old);
	return -ENOMEM;
}

struct subject_arg {
	const char *subject;
	uint64_t hash;
};

static bool match_subject(const struct match_meta *m, const void *arg)
{
	const struct subject_arg *a = arg;

	return m->hash == a->hash && strcmp(m->subject, a->subject) == 0;
}

int match_remove_subject(struct match_db *db, const char *subject)
{
	struct subject_arg a;
	struct match_snap *old, *nw;
	int rc;

	if (!subject || !subject[0] || strnlen(subject, MATCH_SUBJECT_MAX + 1) > MATCH_SUBJECT_MAX) {
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
		return -EINVAL;
	}
	a.subject = subject;
	a.hash = subject_hash(subject);
	pthread_mutex_lock(&db->writer);
	old = atomic_load_explicit(&db->snap, memory_order_relaxed);
	nw = match_snap_clone(db, old, 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = remove_where(db, match_subject, &a, true, a.hash, nw, old);
	if (rc > 0)
		match_snap_publish(db, nw);
	else if (rc == 0)
		match_snap_discard(db, nw, old);
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}

static bool match_watchlist(const struct match_meta *m, const void *arg)
{
	return m->watchlist == *(const uint32_t *)arg;
}

int match_remove_watchlist(struct match_db *db, uint32_t id)
{
	struct match_snap *old, *nw;
	struct match_wl *w;
	int rc;

	pthread_mutex_lock(&db->writer);
	old = atomic_load_explicit(&db->snap, memory_order_relaxed);
	if (!match_wl_find(old, id)) {
		rc = -ENOENT;
		goto out_unlock;
	}
	nw = match_snap_clone(db, old, 0);
	if (!nw) {
		rc = -ENOMEM;
		goto out_unlock;
	}
	rc = remove_where(db, match_watchlist, &id, false, 0, nw, old);
	if (rc >= 0) {
		w = match_wl_find(nw, id);
		memmove(w, w + 1, (size_t)(nw->wl + nw->n_wl - (w + 1)) * sizeof(*w));
		nw->n_wl--;
		match_snap_publish(db, nw);
	}
out_unlock:
	pthread_mutex_unlock(&db->writer);
	return rc;
}

int match_purge(struct match_db *db)
{
	struct match_snap *nw = calloc(1, sizeof(*nw));

	if (!nw)
		return -ENOMEM;
	pthread_mutex_lock(&db->writer);
	nw->n_shards = db->n_shards;
	match_snap_publish(db, nw);
	match_reclaim(db, true); /* every descriptor zeroed and freed before we return */
	pthread_mutex_unlock(&db->writer);
	return 0;
}
