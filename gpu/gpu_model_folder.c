/*
 * ONNX model folders (gpu.h, "Model folders"): vigil-model.json, read and checked key by key,
 * and the ONNX file it names, read whole and checked against the manifest's sha256 before a byte
 * of it is parsed. Both files come from outside: sizes are capped, every value is bounded, and
 * any fault is one line naming the file and the key. Any thread; no state.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "gpu_int.h"
#include "onnx/gpu_onnx.h"
#include "vg_base.h"
#include "vg_file.h"
#include "vg_pool.h"

#define MANIFEST_MAX_BYTES (64u << 10)

int gpu_model_folder_is_onnx(const char *dir)
{
	char path[GPU_MODEL_PATH_MAX];

	snprintf(path, sizeof(path), "%s/" GPU_MODEL_MANIFEST, dir);
	return access(path, F_OK) == 0;
}

/* The ids of face-api's own weights (gpu_model_info.c) are not for a manifest to claim. */
static int id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n < 1 || n > 31 || strncmp(id, "face-api", 8) == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') || (id[i] >= '0' && id[i] <= '9') ||
		      strchr("._:+-", id[i])))
			return 0;
	return 1;
}

static int hex64_ok(const char *s)
{
	if (strlen(s) != 64)
		return 0;
	for (int i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int file_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n < 256 && !strchr(s, '/') && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

/* Three numbers into OUT, each finite and (POSITIVE) above 0. */
static int three_numbers(json_t *a, float *out, int positive)
{
	if (!json_is_array(a) || json_array_size(a) != 3)
		return 0;
	for (size_t i = 0; i < 3; i++) {
		json_t *v = json_array_get(a, i);
		double d = json_number_value(v);

		if (!json_is_number(v) || !isfinite(d) || fabs(d) > 1e6 || (positive && d <= 0))
			return 0;
		out[i] = (float)d;
	}
	return 1;
}

static int read_input(json_t *in, struct gpu_onnx_input *inp, const char **bad)
{
	static const char *const keys[] = {"width", "height", "mean", "std", "channel_order"};
	json_t *w = json_object_get(in, "width"), *h = json_object_get(in, "height");
	const char *order = json_string_value(json_object_get(in, "channel_order"));
	const char *key;
	json_t *v;

	json_object_foreach(in, key, v) {
		size_t i = 0;

		while (i < VG_ARRAY_SIZE(keys) && strcmp(keys[i], key) != 0)
			i++;
		if (i == VG_ARRAY_SIZE(keys))
			return *bad = "input: an unknown key", 0;
	}
	if (!json_is_integer(w) || !json_is_integer(h) || json_integer_value(w) < 8 || json_integer_value(w) > 1024 ||
	    json_integer_value(h) != json_integer_value(w))
		return *bad = "input: width and height must be equal, 8..1024 (the aligned crop is square)", 0;
	inp->width = inp->height = (int)json_integer_value(w);
	if (!three_numbers(json_object_get(in, "mean"), inp->mean, 0) ||
	    !three_numbers(json_object_get(in, "std"), inp->std, 1))
		return *bad = "input: mean and std must be 3 numbers each (std above 0)", 0;
	if (!order || (strcmp(order, "rgb") != 0 && strcmp(order, "bgr") != 0))
		return *bad = "input: channel_order must be \"rgb\" or \"bgr\"", 0;
	inp->bgr = strcmp(order, "bgr") == 0;
	return 1;
}

/* Every key of the manifest, checked; 1, or 0 with *BAD saying which and why. */
static int read_manifest(json_t *root, const char *dir, struct gpu_model_manifest *m, const char **bad)
{
	static const char *const keys[] = {"id", "onnx", "sha256", "input", "descriptor_dim", "metric", "threshold", "detector"};
	const char *id = json_string_value(json_object_get(root, "id"));
	const char *onnx = json_string_value(json_object_get(root, "onnx"));
	const char *sha = json_string_value(json_object_get(root, "sha256"));
	const char *metric = json_string_value(json_object_get(root, "metric"));
	json_t *dim = json_object_get(root, "descriptor_dim"), *thr = json_object_get(root, "threshold");
	json_t *det = json_object_get(root, "detector");
	const char *key, *d;
	json_t *v;

	if (!json_is_object(root))
		return *bad = "not a JSON object", 0;
	json_object_foreach(root, key, v) {
		size_t i = 0;

		while (i < VG_ARRAY_SIZE(keys) && strcmp(keys[i], key) != 0)
			i++;
		if (i == VG_ARRAY_SIZE(keys))
			return *bad = "an unknown key (id, onnx, sha256, input, descriptor_dim, metric, threshold, detector)", 0;
	}
	if (!id || !id_ok(id))
		return *bad = "id: 1..31 of A-Z a-z 0-9 . _ : + -, not starting face-api (the built-in weights' ids)", 0;
	if (!onnx || !file_name_ok(onnx))
		return *bad = "onnx: the name of a file beside the manifest", 0;
	if (!sha || !hex64_ok(sha))
		return *bad = "sha256: 64 lowercase hex digits", 0;
	if (!json_is_object(json_object_get(root, "input")) || !read_input(json_object_get(root, "input"), &m->input, bad))
		return *bad ? 0 : (*bad = "input: an object", 0);
	if (!json_is_integer(dim) || json_integer_value(dim) < 1 || json_integer_value(dim) > GPU_DESCRIPTOR_MAX)
		return *bad = "descriptor_dim: 1..512", 0;
	if (!metric || (strcmp(metric, "l2") != 0 && strcmp(metric, "cosine") != 0))
		return *bad = "metric: \"l2\" or \"cosine\"", 0;
	if (!json_is_number(thr) || !isfinite(json_number_value(thr)) || json_number_value(thr) <= 0 ||
	    json_number_value(thr) > 4)
		return *bad = "threshold: a number above 0, at most 4", 0;
	if (det && (!json_is_string(det) || !*json_string_value(det) || strlen(json_string_value(det)) > 1024))
		return *bad = "detector: the path of a face-api model folder", 0;
	memset(&m->info, 0, sizeof(m->info));
	snprintf(m->info.id, sizeof(m->info.id), "%s", id);
	snprintf(m->info.digest, sizeof(m->info.digest), "%s", sha);
	m->info.descriptor_dim = (unsigned)json_integer_value(dim);
	m->info.metric = strcmp(metric, "cosine") == 0;
	m->info.threshold = json_number_value(thr);
	snprintf(m->onnx_path, sizeof(m->onnx_path), "%s/%s", dir, onnx);
	d = det ? json_string_value(det) : GPU_MODEL_DEFAULT_DETECTOR;
	if ((size_t)snprintf(m->detector_dir, sizeof(m->detector_dir), "%s%s%s", d[0] == '/' ? "" : dir,
			     d[0] == '/' ? "" : "/", d) >= sizeof(m->detector_dir))
		return *bad = "detector: the path is too long", 0;
	return 1;
}

int gpu_model_manifest_parse(const char *text, size_t len, const char *dir, struct gpu_model_manifest *m, char *err,
			     size_t errlen)
{
	json_error_t je;
	const char *bad = NULL;
	json_t *root;
	int rc;

	if (strlen(dir) > GPU_MODEL_PATH_MAX - 300)   /* room for "/" and a 255-byte file name */
		return vg_errf(err, errlen, -ENAMETOOLONG, "model folder: path too long");
	if (len > MANIFEST_MAX_BYTES)
		return vg_errf(err, errlen, -EFBIG, "%s/" GPU_MODEL_MANIFEST ": over %u bytes", dir, MANIFEST_MAX_BYTES);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return vg_errf(err, errlen, -EBADMSG, "%s/" GPU_MODEL_MANIFEST ": line %d: %s", dir, je.line, je.text);
	rc = read_manifest(root, dir, m, &bad) ? 0 : vg_errf(err, errlen, -EINVAL, "%s/" GPU_MODEL_MANIFEST ": %s", dir, bad);
	json_decref(root);
	return rc;
}

int gpu_model_manifest_read(const char *dir, struct gpu_model_manifest *m, char *err, size_t errlen)
{
	char path[GPU_MODEL_PATH_MAX];
	uint8_t *text;
	size_t len;
	int rc;

	if (strlen(dir) > GPU_MODEL_PATH_MAX - 300)
		return vg_errf(err, errlen, -ENAMETOOLONG, "model folder: path too long");
	snprintf(path, sizeof(path), "%s/" GPU_MODEL_MANIFEST, dir);
	if ((rc = vg_file_read(path, MANIFEST_MAX_BYTES, &text, &len)))
		return vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
	rc = gpu_model_manifest_parse((const char *)text, len, dir, m, err, errlen);
	free(text);
	return rc;
}

int gpu_model_onnx_read(const struct gpu_model_manifest *m, uint8_t **out, size_t *outlen, char *err, size_t errlen)
{
	uint8_t digest[crypto_hash_sha256_BYTES];
	char hex[2 * crypto_hash_sha256_BYTES + 1];
	uint8_t *buf;
	size_t len;
	int rc;

	if ((rc = vg_file_read(m->onnx_path, GPU_ONNX_MAX_FILE, &buf, &len)))
		return vg_errf(err, errlen, rc, "%s: %s", m->onnx_path, vg_strerror(rc));
	crypto_hash_sha256(digest, buf, len);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	if (strcmp(hex, m->info.digest) != 0) {
		free(buf);
		return vg_errf(err, errlen, -EBADMSG, "%s: sha256 is %s, the manifest says %s", m->onnx_path, hex,
			       m->info.digest);
	}
	*out = buf;
	*outlen = len;
	return 0;
}
