/*
 * vigilctl alert show ID --out FILE [--state-dir DIR]: the picture a reviewer decides on, one
 * JPEG: the alert's evidence crop (left) beside the subject's enrolment crop from the watchlist
 * (right), each panel the evidence crop's size (the enrolment crop scaled to fit, centred on
 * grey). Like `alert evidence` it reads vigild's state directly (the appliance key: root), and
 * the export is audited. Opening the store also hands it any review outcomes still pending.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "mgmt_ctl.h"
#include "store.h"
#include "vg_base.h"
#include "vg_image.h"
#include "vg_pool.h"
#include "pipeline_evidence.h"
#include "vigilctl_int.h"

#define JPEG_CAP (4u << 20)

/* Scale SRC (nearest neighbour, aspect kept) into the W x H panel at DST (stride DSTRIDE pixels), centred. */
static void fit(const struct vg_image *src, uint8_t *dst, unsigned dstride, unsigned w, unsigned h)
{
	double s = (double)w / src->width < (double)h / src->height ? (double)w / src->width : (double)h / src->height;
	unsigned fw = (unsigned)(src->width * s), fh = (unsigned)(src->height * s);
	unsigned ox = (w - fw) / 2, oy = (h - fh) / 2;

	for (unsigned y = 0; y < fh; y++)
		for (unsigned x = 0; x < fw; x++) {
			unsigned sx = (unsigned)(x / s), sy = (unsigned)(y / s);
			if (sx >= src->width)
				sx = src->width - 1;
			if (sy >= src->height)
				sy = src->height - 1;
			memcpy(dst + ((size_t)(oy + y) * dstride + ox + x) * 3, src->rgb + ((size_t)sy * src->width + sx) * 3, 3);
		}
}

int vigilctl_alert_show_out(int argc, char **argv)
{
	const char *state, *out;
	char err[512], key[600];
	struct vg_image ev = { 0 }, en = { 0 };
	struct mgmt_db *db = NULL;
	struct mgmt_alert a;
	uint8_t *jpeg = NULL, *face = NULL, *pair = NULL;
	unsigned char *outj = NULL;
	unsigned long outlen = 0;
	size_t len = 0, flen = 0, pair_len = 0;
	tjhandle tj = NULL;
	long long id;
	int r, rc;

	rc = vigilctl_alert_open(argc, argv, &state, &out, &id, &db, &a);
	if (rc == 2) {
		return vigilctl_usage("show ID --out FILE [--state-dir DIR]");
	}
	if (rc)
		return rc;
	rc = 1;
	if (!a.evidence[0]) {
		fprintf(stderr, "vigilctl: alert %lld has no saved evidence\n", id);
		goto out;
	}
	snprintf(key, sizeof(key), "%s/appliance.key", state);
	face = malloc(MGMT_WATCHLIST_FACE_MAX);
	jpeg = malloc(JPEG_CAP);
	if (!face || !jpeg) {
		fprintf(stderr, "vigilctl: out of memory\n");
		goto out;
	}
	/* The enrolment crop first: without it there is nothing to compare, and no need for the store. */
	r = mgmt_watchlist_face_get(db, a.watchlist, a.watchlist_seal, a.subject, key, face, MGMT_WATCHLIST_FACE_MAX, &flen);
	if (r < 0) {
		fprintf(stderr, "vigilctl: alert %lld: no enrolment image of %s in watchlist %s: %s\n", id, a.subject,
			a.watchlist,
			r == -ESTALE ? "the watchlist was purged or removed"
			: r == -ENOENT ? "the watchlist is not registered with vigild, or was imported without crops"
				       : vg_strerror(r));
		goto out;
	}
	if (pipeline_evidence_read(db, state, &a, jpeg, JPEG_CAP, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		goto out;
	}
	if (vg_image_decode(jpeg, len, &ev, err, sizeof(err)) < 0 || vg_image_decode(face, flen, &en, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: alert %lld: %s\n", id, err);
		goto out;
	}
	/* Two panels of the evidence crop's size: the reviewer sees both faces at the same scale. */
	unsigned w = ev.width, hh = ev.height;
	pair_len = (size_t)2 * w * hh * 3;
	pair = malloc(pair_len);
	tj = tjInitCompress();
	if (!pair || !tj) {
		fprintf(stderr, "vigilctl: out of memory\n");
		goto out;
	}
	memset(pair, 0x80, pair_len);
	for (unsigned y = 0; y < hh; y++)
		memcpy(pair + (size_t)y * 2 * w * 3, ev.rgb + (size_t)y * w * 3, (size_t)w * 3);
	fit(&en, pair + (size_t)w * 3, 2 * w, w, hh);
	if (tjCompress2(tj, pair, (int)(2 * w), 0, (int)hh, TJPF_RGB, &outj, &outlen, TJSAMP_444, 92, 0) != 0) {
		fprintf(stderr, "vigilctl: JPEG encoder: %s\n", tjGetErrorStr2(tj));
		goto out;
	}
	int fd = vigilctl_out_open(out);
	if (fd < 0)
		goto out;
	if (write(fd, outj, outlen) != (ssize_t)outlen || close(fd) < 0) {
		fprintf(stderr, "vigilctl: cannot write %s: %s\n", out, vg_strerror(-errno));
		goto out;
	}
	struct mgmt_actor who = { "vigilctl", (uint32_t)getuid(), 0 };
	char object[48];
	snprintf(object, sizeof(object), "alert/%lld", id);
	mgmt_audit_append(db, &who, "evidence.export.compare", object, "{\"with\":\"enrolment crop\"}", NULL);
	printf("alert %lld: evidence (left, %ux%u) beside %s's enrolment crop (right): %s, %ux%u JPEG\n", id, w, hh,
	       a.subject, out, 2 * w, hh);
	rc = 0;
out:
	if (outj) {
		vg_scrub(outj, outlen);
		tjFree(outj);
	}
	if (tj)
		tjDestroy(tj);
	if (pair)
		vg_scrub(pair, pair_len);
	free(pair);
	vg_image_release(&ev); /* scrubbed as released */
	vg_image_release(&en);
	if (jpeg)
		vg_scrub(jpeg, len);
	free(jpeg);
	if (face)
		vg_scrub(face, flen);
	free(face);
	mgmt_db_close(&db);
	return rc;
}
