/*
 * The weight loader: dequantisation values, and every way a manifest or .bin can be wrong gives
 * an error with one line saying which file and what (a missing file, a short or long .bin,
 * broken JSON, a tensor of the wrong shape, a non-finite float, a path leaving the folder).
 * With the fetched model (source root as argv[1]) also: the real files open, and truncated or
 * corrupted copies of them are refused.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../gpu/gpu_int.h"
#include "vg_test.h"

static const char good_json[] =
	"[{\"paths\":[\"t.bin\"],\"weights\":["
	"{\"name\":\"a\",\"shape\":[2,3],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\",\"scale\":0.5,\"min\":-1}},"
	"{\"name\":\"b\",\"shape\":[2],\"dtype\":\"float32\"},"
	"{\"name\":\"c\",\"shape\":[],\"dtype\":\"int32\"}]}]";

static void make_bin(uint8_t bin[18])
{
	float b[2] = {1.5f, -2.25f};
	int32_t c = 7;
	for (int i = 0; i < 6; i++)
		bin[i] = (uint8_t)(i * 2);   /* a = q*0.5 - 1 = -1, 0, 1, 2, 3, 4 */
	memcpy(bin + 6, b, 8);
	memcpy(bin + 14, &c, 4);
}

static int one_line(const char *err)
{
	return err[0] != '\0' && strchr(err, '\n') == NULL;
}

static void test_parse(void)
{
	struct gpu_weights *w = NULL;
	uint8_t bin[19];
	char err[256] = "";
	const float *a, *b;
	int s23[2] = {2, 3}, s32[2] = {3, 2}, s2[1] = {2};

	make_bin(bin);
	CHECK_EQ_INT(gpu_weights_parse(&w, good_json, strlen(good_json), bin, 18, err, sizeof(err)), 0);
	if (!w)
		return;
	a = gpu_weights_get(w, "a", 2, s23, err, sizeof(err));
	b = gpu_weights_get(w, "b", 1, s2, err, sizeof(err));
	CHECK(a && a[0] == -1.0f && a[1] == 0.0f && a[5] == 4.0f);
	CHECK(b && b[0] == 1.5f && b[1] == -2.25f);
	err[0] = '\0';
	CHECK(gpu_weights_get(w, "a", 2, s32, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "wrong shape") && one_line(err));
	CHECK(gpu_weights_get(w, "zz", 1, s2, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "no tensor zz") && one_line(err));
	CHECK(gpu_weights_get(w, "c", 0, s2, err, sizeof(err)) == NULL);   /* int32: not for the nets */
	gpu_weights_close(&w);
	CHECK(w == NULL);
	gpu_weights_close(&w);   /* twice is harmless */
}

static void test_parse_errors(void)
{
	struct gpu_weights *w = NULL;
	uint8_t bin[19];
	char err[256];
	static const char *const bad_json[] = {
		"",
		"[",
		"{}",
		"[{\"paths\":[\"t.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[2,3]}]}]",            /* no dtype */
		"[{\"paths\":[\"../t.bin\"],\"weights\":[]}]",                                        /* leaves the folder */
		"[{\"paths\":[\"t.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1,1,1,1,1],\"dtype\":\"float32\"}]}]",
		"[{\"paths\":[\"t.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[-1],\"dtype\":\"float32\"}]}]",
		"[{\"paths\":[\"t.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float64\"}]}]",
		"[{\"paths\":[\"t.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\"}}]}]",
		"[] trailing",
	};

	make_bin(bin);
	for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(gpu_weights_parse(&w, bad_json[i], strlen(bad_json[i]), bin, 18, err, sizeof(err)),
			     -EBADMSG);
		CHECK(w == NULL && one_line(err));
	}
	/* short and long .bin */
	err[0] = '\0';
	CHECK_EQ_INT(gpu_weights_parse(&w, good_json, strlen(good_json), bin, 17, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "short") && one_line(err));
	CHECK_EQ_INT(gpu_weights_parse(&w, good_json, strlen(good_json), bin, 19, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "trailing") && one_line(err));
	/* a NaN among the float32 tensors */
	{
		float nan = NAN;
		memcpy(bin + 6, &nan, 4);
		CHECK_EQ_INT(gpu_weights_parse(&w, good_json, strlen(good_json), bin, 18, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, "non-finite") && one_line(err));
	}
	CHECK(w == NULL);
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(data, 1, len, f) == len;
	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static int copy_file(const char *from, const char *to, long keep /* -1: all */, long flip_at)
{
	FILE *f = fopen(from, "rb");
	char *buf;
	long len;
	int rc;

	if (!f)
		return -1;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(len ? len : 1);
	if (!buf || fread(buf, 1, len, f) != (size_t)len) {
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	if (flip_at >= 0 && flip_at < len)
		buf[flip_at] = '#';
	rc = write_file(to, buf, keep >= 0 && keep < len ? (size_t)keep : (size_t)len);
	free(buf);
	return rc;
}

static const char *const nets[] = {"ssd_mobilenetv1_model", "face_landmark_68_model", "face_recognition_model"};

/* The three nets of MODELS copied into DIR, the descriptor net's .bin cut to KEEP bytes or with
 * byte FLIP_AT changed (-1: as it is). 0, or -1 when a copy failed. */
static int copy_nets(const char *models, const char *dir, long keep, long flip_at)
{
	char from[1024], to[1024];
	int rc = 0;

	for (int i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s/%s-weights_manifest.json", models, nets[i]);
		snprintf(to, sizeof(to), "%s/%s-weights_manifest.json", dir, nets[i]);
		rc |= copy_file(from, to, -1, -1);
		snprintf(from, sizeof(from), "%s/%s.bin", models, nets[i]);
		snprintf(to, sizeof(to), "%s/%s.bin", dir, nets[i]);
		rc |= copy_file(from, to, i == 2 ? keep : -1, i == 2 ? flip_at : -1);
	}
	return rc ? -1 : 0;
}

static void test_files(const char *srcroot)
{
	char dir[512], path[1024], models[256], err[512];
	struct gpu_weights *w = NULL;
	struct gpu_model *m = NULL;
	uint8_t bin[18];

	if (!vg_test_tmpdir("weights", dir, sizeof(dir))) {
		CHECK(0);
		return;
	}
	/* the synthetic model from files */
	make_bin(bin);
	snprintf(path, sizeof(path), "%s/t-weights_manifest.json", dir);
	CHECK(write_file(path, good_json, strlen(good_json)) == 0);
	snprintf(path, sizeof(path), "%s/t.bin", dir);
	CHECK(write_file(path, bin, sizeof(bin)) == 0);
	CHECK_EQ_INT(gpu_weights_load(&w, dir, "t", err, sizeof(err)), 0);
	gpu_weights_close(&w);
	/* the .bin missing */
	unlink(path);
	err[0] = '\0';
	CHECK_EQ_INT(gpu_weights_load(&w, dir, "t", err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "t.bin") && one_line(err));
	/* the manifest missing */
	CHECK_EQ_INT(gpu_weights_load(&w, dir, "nothere", err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "nothere-weights_manifest.json") && one_line(err));
	/* a model folder without the nets */
	err[0] = '\0';
	CHECK(gpu_model_open(&m, dir, err, sizeof(err)) < 0);
	CHECK(m == NULL && one_line(err));
	snprintf(path, sizeof(path), "%s/t-weights_manifest.json", dir);
	unlink(path);

	snprintf(models, sizeof(models), "%s/fetched/face-api-1.7.15/model", srcroot ? srcroot : ".");
	snprintf(path, sizeof(path), "%s/face_recognition_model.bin", models);
	if (srcroot && access(path, R_OK) == 0) {
		char to[1024];

		/* the real model opens, as the pinned face-api weights, identified alike open or not */
		CHECK_EQ_INT(gpu_model_open(&m, models, err, sizeof(err)), 0);
		struct gpu_model_info id_open = *gpu_model_info_of(m), id_files;
		gpu_model_close(&m);
		CHECK(m == NULL);
		CHECK_EQ_STR(id_open.id, "face-api-1.7.15");
		CHECK_EQ_INT(gpu_model_identify(models, &id_files, err, sizeof(err)), 0);
		CHECK_EQ_STR(id_files.digest, id_open.digest);
		CHECK(id_files.descriptor_dim == 128 && id_files.metric == 0 && id_files.threshold == 0.6);
		/* one weight changed (a byte of the descriptor net, still a valid file): another model,
		 * which no watchlist or calibration of the pinned one may be taken for */
		CHECK(copy_nets(models, dir, -1, 1000) == 0);
		CHECK_EQ_INT(gpu_model_identify(dir, &id_files, err, sizeof(err)), 0);
		CHECK(strncmp(id_files.id, "face-api:", 9) == 0 && strlen(id_files.id) == 25);
		CHECK(strcmp(id_files.digest, id_open.digest) != 0);
		/* copies: one truncated .bin, then one corrupt manifest, each refused with one line */
		CHECK(copy_nets(models, dir, 1000000, -1) == 0);
		err[0] = '\0';
		CHECK_EQ_INT(gpu_model_open(&m, dir, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, "face_recognition_model") && strstr(err, "short") && one_line(err));
		snprintf(path, sizeof(path), "%s/face_recognition_model.bin", models);
		snprintf(to, sizeof(to), "%s/face_recognition_model.bin", dir);
		CHECK(copy_file(path, to, -1, -1) == 0);
		snprintf(path, sizeof(path), "%s/face_landmark_68_model-weights_manifest.json", models);
		snprintf(to, sizeof(to), "%s/face_landmark_68_model-weights_manifest.json", dir);
		CHECK(copy_file(path, to, -1, 40) == 0);
		err[0] = '\0';
		CHECK(gpu_model_open(&m, dir, err, sizeof(err)) < 0);
		CHECK(strstr(err, "face_landmark_68_model") && one_line(err));
		CHECK(m == NULL);
		for (int i = 0; i < 3; i++) {
			snprintf(to, sizeof(to), "%s/%s-weights_manifest.json", dir, nets[i]);
			unlink(to);
			snprintf(to, sizeof(to), "%s/%s.bin", dir, nets[i]);
			unlink(to);
		}
	} else if (getenv("VIGIL_REQUIRE_FETCHED") && strcmp(getenv("VIGIL_REQUIRE_FETCHED"), "1") == 0) {
		fprintf(stderr, "test_weights: no fetched model under %s (run tools/bootstrap)\n", models);
		CHECK(0);
	}
	rmdir(dir);
}

int main(int argc, char **argv)
{
	test_parse();
	test_parse_errors();
	test_files(argc > 1 ? argv[1] : NULL);
	return vg_test_exit();
}
