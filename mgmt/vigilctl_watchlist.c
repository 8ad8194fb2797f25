/*
 * vigilctl watchlist import --out FILE [--id N] [--threshold T] [--models DIR] [--json] (DIR | --csv FILE):
 * detect and embed each enrolment image and write a matcher watchlist file (matcher/match.h's
 * format, sha256-sealed, mode 0600). DIR: every .jpg/.jpeg/.png, the subject id being the file
 * name without its extension. CSV: "subject,image" lines (images relative to the CSV's folder,
 * '#' comments). An image with no face, several faces or too low quality is refused with its
 * reason; the others are enrolled. Exit 0 when every image was enrolled, 1 when some were
 * refused or unreadable (the file still holds the good ones), 2 on usage errors.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gpu.h"
#include "match.h"
#include "vg_base.h"
#include "vg_image.h"
#include "vg_pool.h"

int vigilctl_watchlist(int argc, char **argv);

#define MIN_INTEROCULAR_PX 30.0 /* enrolment images must be sharper than camera faces */
#define MAX_ENTRIES 100000

struct item {
	char subject[MATCH_SUBJECT_MAX + 1];
	char path[1024];
};

static int add_item(struct item **items, size_t *n, size_t *cap, const char *subject, const char *path)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct item *p = c > MAX_ENTRIES ? NULL : realloc(*items, c * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*items = p;
		*cap = c;
	}
	if (strlen(subject) == 0 || strlen(subject) > MATCH_SUBJECT_MAX || strlen(path) >= sizeof((*items)->path))
		return -EINVAL;
	snprintf((*items)[*n].subject, sizeof((*items)[*n].subject), "%s", subject);
	snprintf((*items)[*n].path, sizeof((*items)[*n].path), "%s", path);
	(*n)++;
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->subject, ((const struct item *)b)->subject);
}

static int list_dir(const char *dir, struct item **items, size_t *n, size_t *cap)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char *dot = strrchr(e->d_name, '.'), subject[256], path[2048];
		if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg") && strcasecmp(dot, ".png")))
			continue;
		snprintf(subject, sizeof(subject), "%.*s", (int)(dot - e->d_name), e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (add_item(items, n, cap, subject, path) < 0) {
			closedir(d);
			return -EINVAL;
		}
	}
	closedir(d);
	qsort(*items, *n, sizeof(**items), cmp_item); /* a stable order: the file does not depend on readdir */
	return 0;
}

static int read_csv(const char *csv, struct item **items, size_t *n, size_t *cap, char *err, size_t errlen)
{
	char line[2048], dir_buf[1024], path[2048];
	FILE *f = fopen(csv, "r");
	unsigned lineno = 0;

	if (!f)
		return vg_errf(err, errlen, -errno, "%s: %s", csv, vg_strerror(-errno));
	snprintf(dir_buf, sizeof(dir_buf), "%s", csv);
	const char *dir = dirname(dir_buf);
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *comma = strchr(line, ',');
		if (!comma || comma == line || !comma[1]) {
			fclose(f);
			return vg_errf(err, errlen, -EINVAL, "%s line %u: expected subject,image", csv, lineno);
		}
		*comma = '\0';
		if (comma[1] == '/')
			snprintf(path, sizeof(path), "%s", comma + 1);
		else
			snprintf(path, sizeof(path), "%s/%s", dir, comma + 1);
		if (add_item(items, n, cap, line, path) < 0) {
			fclose(f);
			return vg_errf(err, errlen, -EINVAL, "%s line %u: subject ids are 1 to 64 bytes", csv, lineno);
		}
	}
	fclose(f);
	return 0;
}

int vigilctl_watchlist(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },    { "id", required_argument, NULL, 'i' },
		{ "threshold", required_argument, NULL, 't' }, { "models", required_argument, NULL, 'm' },
		{ "csv", required_argument, NULL, 'c' },    { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 },
	};
	const char *out_path = NULL, *csv = NULL, *models = getenv("VIGIL_MODELS");
	struct match_watchlist_def wl = { 1, GPU_MATCH_THRESHOLD };
	struct item *items = NULL;
	size_t n = 0, cap = 0, enrolled = 0;
	float *desc = NULL;
	struct match_entry *entries = NULL;
	struct gpu_model *model = NULL;
	struct gpu_face faces[8];
	bool json = false;
	char err[512];
	int c, rc = 2, refused = 0;

	if (argc < 2 || strcmp(argv[1], "import") != 0) {
		fprintf(stderr, "vigilctl: watchlist import --out FILE [--id N] [--threshold T] (DIR | --csv FILE)\n");
		return 2;
	}
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': out_path = optarg; break;
		case 'c': csv = optarg; break;
		case 'm': models = optarg; break;
		case 'j': json = true; break;
		case 'i':
			wl.id = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || !wl.id) {
				fprintf(stderr, "vigilctl: watchlist import: --id is a positive number\n");
				return 2;
			}
			break;
		case 't':
			wl.threshold = strtof(optarg, &end);
			if (*end || !(wl.threshold > 0 && wl.threshold < 4)) {
				fprintf(stderr, "vigilctl: watchlist import: --threshold is an L2 distance in (0, 4)\n");
				return 2;
			}
			break;
		default:
			fprintf(stderr, "vigilctl: watchlist import: bad option (vigilctl --help)\n");
			return 2;
		}
	}
	int first = optind + 1; /* getopt saw argv + 1 */
	if (!out_path || !models || (csv ? first != argc : first + 1 != argc)) {
		fprintf(stderr, "vigilctl: watchlist import needs --out FILE, the model (--models or $VIGIL_MODELS), "
				"and a folder or --csv FILE\n");
		return 2;
	}
	rc = csv ? read_csv(csv, &items, &n, &cap, err, sizeof(err)) : list_dir(argv[first], &items, &n, &cap);
	if (rc < 0) {
		fprintf(stderr, "vigilctl: %s\n", csv ? err : vg_strerror(rc));
		rc = 1;
		goto out;
	}
	if (n == 0) {
		fprintf(stderr, "vigilctl: no images to enrol\n");
		rc = 1;
		goto out;
	}
	if (gpu_model_open(&model, models, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		rc = 2;
		goto out;
	}
	desc = calloc(n, GPU_DESCRIPTOR_DIM * sizeof(float));
	entries = calloc(n, sizeof(*entries));
	if (!desc || !entries) {
		rc = 1;
		goto out;
	}
	if (json)
		printf("{\"results\":[");
	for (size_t i = 0; i < n; i++) {
		struct vg_image img;
		char why[640] = "";
		int nf;

		if (vg_image_load(items[i].path, &img, err, sizeof(err)) < 0) {
			snprintf(why, sizeof(why), "unreadable: %s", err);
		} else {
			nf = gpu_faces_run(model, img.rgb, img.width, img.height, faces, 8);
			if (nf == 0)
				snprintf(why, sizeof(why), "no face found");
			else if (nf > 1)
				snprintf(why, sizeof(why), "%d faces: enrol an image of the one person", nf);
			else if (faces[0].quality.interocular_px < MIN_INTEROCULAR_PX)
				snprintf(why, sizeof(why), "too low quality: eyes %.0f px apart, need %.0f",
					 faces[0].quality.interocular_px, MIN_INTEROCULAR_PX);
			else if (nf < 0)
				snprintf(why, sizeof(why), "%s", vg_strerror(nf));
			if (!why[0]) {
				memcpy(desc + enrolled * GPU_DESCRIPTOR_DIM, faces[0].descriptor, sizeof(faces[0].descriptor));
				entries[enrolled] = (struct match_entry){ items[i].subject, wl.id, desc + enrolled * GPU_DESCRIPTOR_DIM };
				enrolled++;
			}
			gpu_faces_retire(faces, nf > 0 ? nf : 0);
			vg_image_release(&img);
		}
		if (why[0])
			refused++;
		if (json)
			printf("%s{\"subject\":\"%s\",\"image\":\"%s\",\"enrolled\":%s%s%s%s}", i ? "," : "", items[i].subject,
			       items[i].path, why[0] ? "false" : "true", why[0] ? ",\"reason\":\"" : "", why, why[0] ? "\"" : "");
		else if (why[0])
			fprintf(stderr, "vigilctl: %s: refused: %s\n", items[i].path, why);
		else
			printf("enrolled %s from %s\n", items[i].subject, items[i].path);
	}
	if (enrolled) {
		void *buf = NULL;
		size_t len = 0;
		if (match_file_encode("face-api-1.7.15", GPU_DESCRIPTOR_DIM, MATCH_METRIC_L2, &wl, 1, entries,
				      (unsigned)enrolled, &buf, &len, err, sizeof(err)) < 0) {
			fprintf(stderr, "vigilctl: %s\n", err);
			rc = 1;
			goto out;
		}
		int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		ssize_t w = fd >= 0 ? write(fd, buf, len) : -1;
		if (fd < 0 || w != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
			fprintf(stderr, "vigilctl: cannot write %s: %s\n", out_path, vg_strerror(-errno));
			vg_scrub(buf, len);
			free(buf);
			rc = 1;
			goto out;
		}
		vg_scrub(buf, len);
		free(buf);
	}
	if (json)
		printf("],\"enrolled\":%zu,\"refused\":%d,\"out\":\"%s\"}\n", enrolled, refused, enrolled ? out_path : "");
	else
		printf("%zu enrolled in watchlist %u (threshold %.2f), %d refused%s%s\n", enrolled, wl.id, wl.threshold,
		       refused, enrolled ? ": " : "", enrolled ? out_path : "");
	rc = refused || !enrolled ? 1 : 0;
out:
	if (desc)
		vg_scrub(desc, n * GPU_DESCRIPTOR_DIM * sizeof(float));
	free(desc);
	free(entries);
	free(items);
	gpu_model_close(&model);
	return rc;
}
