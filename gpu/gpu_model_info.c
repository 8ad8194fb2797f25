/*
 * A model's identity (gpu.h's struct gpu_model_info): which weights these are, as one digest, and
 * the id watchlists and calibrations are bound to. Any thread; no state.
 *
 * An ONNX model folder (a vigil-model.json: gpu.h) is what its manifest says: its id, the ONNX
 * file's sha256 as the digest (checked against the file), its descriptor size, metric and
 * threshold. The detector and landmark nets it borrows from a face-api folder are left out of
 * that digest.
 *
 * A face-api folder's digest is sha256 over a version tag and each net's own digest (its manifest's bytes then
 * its .bin files', gpu_weights_load), for the SSD, the landmark net and the descriptor net in that
 * order: all three decide a descriptor (box, landmarks, alignment, crop). The optional tiny
 * detector is left out: it only changes which faces are found when asked for.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu_int.h"
#include "vg_base.h"

/* The digest of face-api 1.7.15's weights as npm ships them (tools/bootstrap pins the package). */
#define FACE_API_1715_DIGEST "2f4a44b0442c0b8f7b9bc2b849a4a2850cdd8dac99b20f29a659044d25813404"

void gpu_model_info_fill(struct gpu_model_info *info, const struct gpu_weights *ssd, const struct gpu_weights *lm,
			 const struct gpu_weights *rec)
{
	static const char tag[] = "vigil-model/1 face-api";
	crypto_hash_sha256_state st;
	uint8_t d[crypto_hash_sha256_BYTES];

	crypto_hash_sha256_init(&st);
	crypto_hash_sha256_update(&st, (const uint8_t *)tag, sizeof(tag));
	crypto_hash_sha256_update(&st, ssd->digest, sizeof(ssd->digest));
	crypto_hash_sha256_update(&st, lm->digest, sizeof(lm->digest));
	crypto_hash_sha256_update(&st, rec->digest, sizeof(rec->digest));
	crypto_hash_sha256_final(&st, d);
	memset(info, 0, sizeof(*info));
	sodium_bin2hex(info->digest, sizeof(info->digest), d, sizeof(d));
	if (strcmp(info->digest, FACE_API_1715_DIGEST) == 0)
		snprintf(info->id, sizeof(info->id), "face-api-1.7.15");
	else
		snprintf(info->id, sizeof(info->id), "face-api:%.16s", info->digest);
	info->descriptor_dim = GPU_DESCRIPTOR_DIM;
	info->metric = 0;
	info->threshold = GPU_MATCH_THRESHOLD;
}

/* An ONNX model folder: what its manifest says, once the ONNX file's sha256 is checked. */
static int identify_onnx(const char *dir, struct gpu_model_info *info, char *err, size_t errlen)
{
	struct gpu_model_manifest *mf = malloc(sizeof(*mf));
	uint8_t *buf = NULL;
	size_t len;
	int rc;

	if (!mf)
		return vg_errf(err, errlen, -ENOMEM, "model: out of memory");
	if (!(rc = gpu_model_manifest_read(dir, mf, err, errlen)) &&
	    !(rc = gpu_model_onnx_read(mf, &buf, &len, err, errlen)))
		*info = mf->info;
	free(buf);
	free(mf);
	return rc;
}

int gpu_model_identify(const char *dir, struct gpu_model_info *info, char *err, size_t errlen)
{
	struct gpu_weights *ssd = NULL, *lm = NULL, *rec = NULL;
	int rc;

	if (gpu_model_folder_is_onnx(dir))
		return identify_onnx(dir, info, err, errlen);

	if (!(rc = gpu_weights_load(&ssd, dir, "ssd_mobilenetv1_model", err, errlen)) &&
	    !(rc = gpu_weights_load(&lm, dir, "face_landmark_68_model", err, errlen)) &&
	    !(rc = gpu_weights_load(&rec, dir, "face_recognition_model", err, errlen)))
		gpu_model_info_fill(info, ssd, lm, rec);
	gpu_weights_close(&ssd);
	gpu_weights_close(&lm);
	gpu_weights_close(&rec);
	return rc;
}
