/*
 * `vigilctl faces [--json] [--tiny | --tiled] [--models DIR] IMAGE...`: run the on-box face model on still images,
 * no daemon needed (DESIGN.md "Contracts"). --json prints one document exactly as
 * tools/oracle/faces.js does:
 *   {"images":[{"path","width","height","rgb_sha256","faces":[{"box","score","landmarks","descriptor"}]}]}
 * Text mode prints a line per image and per face for people. An unreadable or corrupt image
 * gets one line on stderr and is left out; the others are still processed; the exit status is
 * 1 when any image failed, 2 on bad usage or a model that cannot be opened.
 *
 * --tiny uses face-api's tiny face detector instead of the SSD (faster, fewer small faces);
 * --tiled adds native-resolution 512 tiles for small faces in large frames (not face-api's output).
 * The model folder: --models DIR, else $VIGIL_MODELS, else fetched/face-api-1.7.15/model
 * under the current directory (vigilctl_models()). --json also stands anywhere (vigilctl.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"
#include "vg_base.h"
#include "vg_image.h"
#include "vigilctl_int.h"

static unsigned descriptor_dim = GPU_DESCRIPTOR_DIM;   /* the open model's (gpu_model_info) */

static void json_quote(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void json_image(FILE *f, const char *path, const struct vg_image *img, const char *sha,
		       const struct gpu_face *faces, int n, int first)
{
	fprintf(f, "%s{\"path\":", first ? "" : ",");
	json_quote(f, path);
	fprintf(f, ",\"width\":%u,\"height\":%u,\"rgb_sha256\":\"%s\",\"faces\":[", img->width,
		img->height, sha);
	for (int i = 0; i < n; i++) {
		const struct gpu_face *fc = &faces[i];

		fprintf(f, "%s{\"box\":[%.17g,%.17g,%.17g,%.17g],\"score\":%.17g,\"landmarks\":[",
			i ? "," : "", fc->box[0], fc->box[1], fc->box[2], fc->box[3], fc->score);
		for (int k = 0; k < GPU_LANDMARKS; k++)
			fprintf(f, "%s[%.17g,%.17g]", k ? "," : "", fc->landmarks[k][0], fc->landmarks[k][1]);
		fprintf(f, "],\"descriptor\":[");
		for (unsigned k = 0; k < descriptor_dim; k++)
			fprintf(f, "%s%.9g", k ? "," : "", (double)fc->descriptor[k]);
		fprintf(f, "]}");
	}
	fprintf(f, "]}");
}

static void text_image(FILE *f, const char *path, const struct vg_image *img,
		       const struct gpu_face *faces, int n)
{
	fprintf(f, "%s: %ux%u, %d face%s\n", path, img->width, img->height, n, n == 1 ? "" : "s");
	for (int i = 0; i < n; i++) {
		const struct gpu_face *fc = &faces[i];

		fprintf(f, "  face %d: box %.0f,%.0f %.0fx%.0f score %.3f, eyes %.0f px apart, yaw %+.0f deg, sharpness %.0f\n",
			i + 1, fc->box[0], fc->box[1], fc->box[2], fc->box[3], fc->score,
			fc->quality.interocular_px, fc->quality.yaw_deg, fc->quality.sharpness);
	}
}

int vigilctl_faces(int argc, char **argv)
{
	const char *models = NULL;
	int json = vigilctl_global.json, nimages = 0, failed = 0, first = 1, tiny = 0, tiled = 0;
	struct gpu_model *model = NULL;
	struct gpu_face *faces;
	char err[512];
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--tiny") == 0) {
			tiny = 1;
		} else if (strcmp(argv[i], "--tiled") == 0) {
			tiled = 1;
		} else if (strcmp(argv[i], "--models") == 0) {
			if (i + 1 == argc)
				return vigilctl_usage("--models needs a value");
			models = argv[++i];
		} else if (strcmp(argv[i], "--help") == 0) {
			printf("usage: vigilctl faces [--json] [--tiny | --tiled] [--models DIR] IMAGE...\n");
			return 0;
		} else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return vigilctl_usage("unknown option '%s'", argv[i]);
		} else {
			break;
		}
	}
	nimages = argc - i;
	if (nimages <= 0) {
		return vigilctl_usage("no image given");
	}
	models = vigilctl_models(models);
	if (gpu_model_open(&model, models, err, sizeof(err))) {
		fprintf(stderr, "vigilctl faces: %s\n", err);
		return 2;
	}
	descriptor_dim = gpu_model_info_of(model)->descriptor_dim;
	faces = calloc(GPU_MAX_FACES, sizeof(*faces));
	if (!faces) {
		fprintf(stderr, "vigilctl faces: out of memory\n");
		gpu_model_close(&model);
		return 2;
	}
	if (json)
		printf("{\"images\":[");
	for (; i < argc; i++) {
		struct vg_image img = {0};
		char sha[65];
		int n;

		if (vg_image_load(argv[i], &img, err, sizeof(err))) {
			fprintf(stderr, "vigilctl faces: %s: %s\n", argv[i], err);
			failed = 1;
			continue;
		}
		if (tiny)
			n = gpu_faces_run_tiny(model, img.rgb, img.width, img.height, faces, GPU_MAX_FACES);
		else if (tiled)
			n = gpu_faces_run_tiled(model, img.rgb, img.width, img.height, 192, faces, GPU_MAX_FACES);
		else
			n = gpu_faces_run(model, img.rgb, img.width, img.height, faces, GPU_MAX_FACES);
		if (n < 0) {
			fprintf(stderr, "vigilctl faces: %s: %s\n", argv[i], vg_strerror(n));
			failed = 1;
			vg_image_release(&img);
			continue;
		}
		vg_image_rgb_sha256(&img, sha);
		if (json)
			json_image(stdout, argv[i], &img, sha, faces, n, first);
		else
			text_image(stdout, argv[i], &img, faces, n);
		first = 0;
		gpu_faces_retire(faces, n);
		vg_image_release(&img);
	}
	if (json)
		printf("]}\n");
	free(faces);
	gpu_model_close(&model);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "vigilctl faces: writing the output failed\n");
		return 1;
	}
	return failed ? 1 : 0;
}
