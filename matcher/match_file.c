/*
 * The watchlist file (format in match.h): encode, and load with full validation before anything
 * is enrolled. Every length is checked against the exact size the header implies (in 64-bit
 * arithmetic) before a byte of the body is read; the SHA-256 over everything is checked before
 * any entry is interpreted. The host is little-endian (x86-64), as the file is.
 */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"
#include "vg_file.h"
#include "vg_pool.h"

#define FILE_MAGIC "VGWLIST"
#define FILE_HDR 64u
#define FILE_MODEL 32u
#define FILE_WL_MAX 65536u
#define FILE_ENTRIES_MAX (16u << 20)
#define FILE_SUM crypto_hash_sha256_BYTES

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint64_t entry_size(unsigned d)
{
	return MATCH_SUBJECT_MAX + 4 + (uint64_t)d * 4;
}

int match_file_encode(const char *model, unsigned d, enum match_metric metric, const struct match_watchlist_def *wl,
		      unsigned n_wl, const struct match_entry *e, unsigned n, void **out, size_t *outlen, char *err,
		      size_t errlen)
{
	uint64_t es = entry_size(d), len;
	uint8_t *buf, *p;

	if (!model || !model[0] || strlen(model) > MATCH_MODEL_MAX)
		return vg_errf(err, errlen, -EINVAL, "model id must be 1..%u bytes", MATCH_MODEL_MAX);
	if (d < 16 || d > MATCH_D_MAX || d % 16)
		return vg_errf(err, errlen, -EINVAL, "d %u: must be a multiple of 16 in 16..%u", d, MATCH_D_MAX);
	if (n_wl > FILE_WL_MAX || n > FILE_ENTRIES_MAX)
		return vg_errf(err, errlen, -EINVAL, "too many watchlists or entries");
	for (unsigned i = 0; i < n; i++) {
		size_t sl = e[i].subject ? strnlen(e[i].subject, MATCH_SUBJECT_MAX + 1) : 0;

		if (sl == 0 || sl > MATCH_SUBJECT_MAX)
			return vg_errf(err, errlen, -EINVAL, "entry %u: subject must be 1..%u bytes", i,
				       MATCH_SUBJECT_MAX);
		if (!e[i].desc || match_desc_check(e[i].desc, d) < 0)
			return vg_errf(err, errlen, -EINVAL, "entry %u: bad descriptor", i);
	}
	len = FILE_HDR + (uint64_t)n_wl * 8 + (uint64_t)n * es + FILE_SUM;
	buf = calloc(1, len);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, FILE_MAGIC, 8);
	wr32(buf + 8, MATCH_FILE_VERSION);
	wr32(buf + 12, FILE_HDR);
	memcpy(buf + 16, model, strlen(model));
	wr32(buf + 48, d);
	wr32(buf + 52, (uint32_t)metric);
	wr32(buf + 56, n_wl);
	wr32(buf + 60, n);
	p = buf + FILE_HDR;
	for (unsigned i = 0; i < n_wl; i++, p += 8) {
		wr32(p, wl[i].id);
		memcpy(p + 4, &wl[i].threshold, 4);
	}
	for (unsigned i = 0; i < n; i++, p += es) {
		memcpy(p, e[i].subject, strlen(e[i].subject));
		wr32(p + MATCH_SUBJECT_MAX, e[i].watchlist);
		memcpy(p + MATCH_SUBJECT_MAX + 4, e[i].desc, (size_t)d * 4);
	}
	if (sodium_init() < 0) {
		free(buf);
		return -ENOMEM;
	}
	crypto_hash_sha256(p, buf, (unsigned long long)(p - buf));
	*out = buf;
	*outlen = (size_t)len;
	return 0;
}

/* The header's fields, once file_header() has checked them. */
struct file_hdr {
	uint32_t d, metric, n_wl, n;
	uint64_t es; /* bytes per entry */
};

/* Magic, version, fields in range, and the length the header implies against LEN, exactly. */
static int file_header(const uint8_t *buf, size_t len, struct file_hdr *h, char *err, size_t errlen)
{
	uint32_t version, hdr;
	uint64_t want;

	if (len < FILE_HDR + FILE_SUM)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file truncated: %zu bytes, the header alone is %u", len,
			       FILE_HDR + FILE_SUM);
	if (memcmp(buf, FILE_MAGIC, 8) != 0)
		return vg_errf(err, errlen, -EBADMSG, "not a watchlist file (bad magic)");
	version = rd32(buf + 8);
	hdr = rd32(buf + 12);
	h->d = rd32(buf + 48);
	h->metric = rd32(buf + 52);
	h->n_wl = rd32(buf + 56);
	h->n = rd32(buf + 60);
	if (version != MATCH_FILE_VERSION || hdr != FILE_HDR)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file version %u (header %u): this build reads version %u",
			       version, hdr, MATCH_FILE_VERSION);
	if (h->d < 16 || h->d > MATCH_D_MAX || h->d % 16 || h->metric > MATCH_METRIC_COSINE || h->n_wl > FILE_WL_MAX ||
	    h->n > FILE_ENTRIES_MAX)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file header out of range (d %u, metric %u, %u watchlists, %u entries)",
			       h->d, h->metric, h->n_wl, h->n);
	h->es = entry_size(h->d);
	want = FILE_HDR + (uint64_t)h->n_wl * 8 + (uint64_t)h->n * h->es + FILE_SUM;
	if (want != len)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file is %zu bytes, its header says %llu (truncated or oversized)",
			       len, (unsigned long long)want);
	return 0;
}

/* The SHA-256 at the end over everything before it: the seal, checked before any entry is read. */
static int file_seal(const uint8_t *buf, size_t len, char *err, size_t errlen)
{
	uint8_t sum[FILE_SUM];

	if (sodium_init() < 0)
		return -ENOMEM;
	crypto_hash_sha256(sum, buf, (unsigned long long)(len - FILE_SUM));
	if (sodium_memcmp(sum, buf + len - FILE_SUM, FILE_SUM) != 0)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file checksum mismatch: corrupt");
	return 0;
}

/* The model the file was made for, against DB's: another model's descriptors mean nothing here. */
static int file_model(const struct match_db *db, const uint8_t *buf, const struct file_hdr *h, char *err,
		      size_t errlen)
{
	/* The checksum only proves the file is what its writer wrote: still check every field. */
	if (buf[16] == 0 || memchr(buf + 16, 0, FILE_MODEL) == NULL)
		return vg_errf(err, errlen, -EBADMSG, "watchlist file model id is empty or not terminated");
	if (strcmp((const char *)buf + 16, db->model) != 0 || h->d != db->d || h->metric != (uint32_t)db->metric)
		return vg_errf(err, errlen, -EINVAL, "watchlist file is for model %.31s (d %u, metric %u); this matcher is %s (d %u, metric %u)",
			       (const char *)buf + 16, h->d, h->metric, db->model, db->d, (unsigned)db->metric);
	return 0;
}

/* The N_WL watchlists at P into WL: finite thresholds, no id twice. */
static int file_watchlists(const uint8_t *p, uint32_t n_wl, struct match_watchlist_def *wl, char *err, size_t errlen)
{
	for (uint32_t i = 0; i < n_wl; i++, p += 8) {
		wl[i].id = rd32(p);
		memcpy(&wl[i].threshold, p + 4, 4);
		if (!isfinite(wl[i].threshold))
			return vg_errf(err, errlen, -EBADMSG, "watchlist %u: threshold is not finite", wl[i].id);
		for (uint32_t j = 0; j < i; j++)
			if (wl[j].id == wl[i].id)
				return vg_errf(err, errlen, -EBADMSG, "watchlist %u listed twice", wl[i].id);
	}
	return 0;
}

/*
 * The entries at P into E, their subjects copied into SUBJ and descriptors into DESC: a subject is
 * 1..MATCH_SUBJECT_MAX bytes with nothing after its NUL, on a watchlist of the file's WL.
 */
static int file_entries(const uint8_t *p, const struct file_hdr *h, const struct match_watchlist_def *wl,
			struct match_entry *e, char (*subj)[MATCH_SUBJECT_MAX + 1], float *desc, char *err,
			size_t errlen)
{
	uint32_t d = h->d;

	for (uint32_t i = 0; i < h->n; i++, p += h->es) {
		size_t sl = strnlen((const char *)p, MATCH_SUBJECT_MAX);
		uint32_t w = rd32(p + MATCH_SUBJECT_MAX);
		bool known = false;

		if (sl == 0)
			return vg_errf(err, errlen, -EBADMSG, "entry %u: empty subject", i);
		for (size_t b = sl; b < MATCH_SUBJECT_MAX; b++)
			if (p[b])
				return vg_errf(err, errlen, -EBADMSG, "entry %u: subject has bytes after its NUL", i);
		/* O(entries * watchlists); files list a handful of watchlists */
		for (uint32_t j = 0; j < h->n_wl && !known; j++)
			known = wl[j].id == w;
		if (!known)
			return vg_errf(err, errlen, -EBADMSG, "entry %u: watchlist %u is not in the file", i, w);
		memcpy(subj[i], p, sl);
		memcpy(desc + (size_t)i * d, p + MATCH_SUBJECT_MAX + 4, (size_t)d * 4);
		e[i] = (struct match_entry){ .subject = subj[i], .watchlist = w, .desc = desc + (size_t)i * d };
	}
	return 0;
}

int match_load(struct match_db *db, const void *vbuf, size_t len, char *err, size_t errlen)
{
	const uint8_t *buf = vbuf;
	struct file_hdr h = { 0 };
	struct match_watchlist_def *wl = NULL;
	struct match_entry *e = NULL;
	char (*subj)[MATCH_SUBJECT_MAX + 1] = NULL;
	float *desc = NULL;
	int rc;

	rc = file_header(buf, len, &h, err, errlen);
	if (rc == 0)
		rc = file_seal(buf, len, err, errlen);
	if (rc == 0)
		rc = file_model(db, buf, &h, err, errlen);
	if (rc < 0)
		goto out_refused;
	wl = calloc(h.n_wl + 1, sizeof(*wl));
	e = calloc((size_t)h.n + 1, sizeof(*e));
	subj = calloc((size_t)h.n + 1, sizeof(*subj));
	desc = malloc(((size_t)h.n * h.d + 1) * sizeof(float));
	if (!wl || !e || !subj || !desc) {
		rc = -ENOMEM;
		goto out_free;
	}
	rc = file_watchlists(buf + FILE_HDR, h.n_wl, wl, err, errlen);
	if (rc == 0)
		rc = file_entries(buf + FILE_HDR + (size_t)h.n_wl * 8, &h, wl, e, subj, desc, err, errlen);
	if (rc < 0)
		goto out_free;
	/* Descriptors (finite, in range, non-zero under cosine) are checked by the enroll itself. */
	pthread_mutex_lock(&db->writer);
	rc = match_enroll_locked(db, wl, h.n_wl, e, h.n, err, errlen);
	pthread_mutex_unlock(&db->writer);
	if (rc == -ENOENT)
		rc = -EBADMSG;
out_free:
	if (desc)
		vg_scrub(desc, (size_t)h.n * h.d * sizeof(float));
	if (subj)
		vg_scrub(subj, (size_t)h.n * sizeof(*subj));
	free(desc);
	free(subj);
	free(e);
	free(wl);
	if (rc == -EINVAL || rc == -EBADMSG)
		atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
	return rc;
out_refused:
	atomic_fetch_add_explicit(&db->refused, 1, memory_order_relaxed);
	return rc;
}

int match_load_file(struct match_db *db, const char *path, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int rc;

	rc = vg_file_read(path, (size_t)16 << 30, &buf, &len);
	if (rc == -EINVAL || rc == -EFBIG)
		return vg_errf(err, errlen, -EINVAL, "%s: not a regular file of at most 16 GiB", path);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
	rc = match_load(db, buf, len, err, errlen);
	vg_scrub(buf, len); /* the descriptors are biometric data */
	free(buf);
	return rc;
}
