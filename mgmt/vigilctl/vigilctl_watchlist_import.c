/*
 * vigilctl watchlist import (--name N | --out FILE) [--id N] [--threshold T] [--models DIR] [--json]
 * (DIR | --csv FILE): detect and embed each enrolment image into a matcher watchlist (matcher/match.h's
 * format, sha256-sealed). --name: register it with vigild straight from memory (a memfd passed on
 * the control socket, never a file on disk), with each subject's aligned enrolment crop, which
 * vigild keeps encrypted for reviewers. --out: write the file (mode 0600) for `watchlist add` or
 * `vigild run --watchlist`. DIR: every .jpg/.jpeg/.png, the subject id being the file name
 * without its extension. CSV: "subject,image" rows (images relative to the CSV's folder, '#'
 * comments). A row that is malformed, or whose image is unreadable, has no face, several faces or
 * too low quality, is refused with a one-line reason; the others are enrolled. Exit 0 when every
 * row was enrolled, 1 when some were refused (the watchlist still holds the good ones), 2 on usage.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <jansson.h>

#include "vg_config.h"
#include "gpu.h"
#include "match.h"
#include "mgmt_ctl.h"
#include "vg_base.h"
#include "vg_file.h"
#include "vg_image.h"
#include "vg_pool.h"
#include "vigilctl_int.h"

#define MIN_INTEROCULAR_PX 30.0 /* enrolment images must be sharper than camera faces */
#define MAX_ENTRIES 100000

struct item {
	char subject[MATCH_SUBJECT_MAX + 1];
	char path[1024];
	char why[96]; /* a CSV row refused before its image is read */
	unsigned line; /* its CSV line; 0 for a folder's file */
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
	(*items)[*n].why[0] = '\0';
	(*n)++;
	return 0;
}

static int cmp_item(const void *a, const void *b)
{
	return strcmp(((const struct item *)a)->subject, ((const struct item *)b)->subject);
}

static int list_dir(const char *dir, struct item **items, size_t *n, size_t *cap, char *err, size_t errlen)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return vg_errf(err, errlen, -errno, "%s: %s", dir, vg_strerror(-errno));
	while ((e = readdir(d))) {
		char *dot = strrchr(e->d_name, '.'), subject[256], path[2048];
		if (!dot || (strcasecmp(dot, ".jpg") && strcasecmp(dot, ".jpeg") && strcasecmp(dot, ".png")))
			continue;
		snprintf(subject, sizeof(subject), "%.*s", (int)(dot - e->d_name), e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		int rc = add_item(items, n, cap, subject, path);
		if (rc < 0) {
			closedir(d);
			return rc == -ENOMEM ? vg_errf(err, errlen, rc, "%s: more than %d images", dir, MAX_ENTRIES)
					     : vg_errf(err, errlen, rc, "%s/%s: subject ids (the file name without its "
						       "extension) are 1 to %d bytes", dir, e->d_name, MATCH_SUBJECT_MAX);
		}
	}
	closedir(d);
	qsort(*items, *n, sizeof(**items), cmp_item); /* a stable order: the file does not depend on readdir */
	return 0;
}

/*
 * Whether the first data row of a CSV is a header ("subject,image", "id,path", ...): its image
 * field names no image (no .jpg/.jpeg/.png ending) and no file that exists. A real first row
 * names a photo, so it is never mistaken for one.
 */
static bool csv_header(const char *image, const char *dir)
{
	const char *dot = strrchr(image, '.');
	char path[2048];

	if (dot && (!strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".png")))
		return false;
	snprintf(path, sizeof(path), "%s/%s", image[0] == '/' ? "" : dir, image);
	return access(path, F_OK) != 0;
}

/* The CSV is read whole (vg_file_read: a FIFO or device is refused, not waited on); MAX_ENTRIES
 * rows of a 64-byte id and a path fit in a few MiB, so 16 MiB bounds the read. */
#define MAX_CSV_BYTES (16u << 20)

static int read_csv(const char *csv, struct item **items, size_t *n, size_t *cap, char *err, size_t errlen)
{
	char dir_buf[1024], path[2048], where[64], *text, *next, *line;
	unsigned lineno = 0;
	bool first_row = true;
	size_t len;
	int rc = vg_file_read(csv, MAX_CSV_BYTES, (uint8_t **)&text, &len);

	if (rc < 0)
		return vg_errf(err, errlen, rc, "%s: %s", csv, rc == -EINVAL ? "not a regular file" : vg_strerror(rc));
	snprintf(dir_buf, sizeof(dir_buf), "%s", csv);
	const char *dir = dirname(dir_buf);
	for (next = text; (line = strsep(&next, "\n")) && (next || *line);) {
		lineno++;
		line[strcspn(line, "\r\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		char *comma = strchr(line, ',');
		const char *why = NULL;
		if (first_row && comma && csv_header(comma + 1, dir)) {
			first_row = false;
			continue;
		}
		first_row = false;
		if (!comma || comma == line || !comma[1])
			why = "expected subject_id,image_path";
		else if (comma - line > MATCH_SUBJECT_MAX)
			why = "subject ids are 1 to 64 bytes";
		else if (strlen(comma + 1) >= sizeof((*items)->path) - strlen(dir) - 1)
			why = "image path too long";
		if (why) {
			/* One bad row is refused with its reason, like a bad image; the others still enrol. */
			snprintf(where, sizeof(where), "line %u", lineno);
			if (add_item(items, n, cap, where, csv) < 0)
				goto out_too_many;
			snprintf((*items)[*n - 1].why, sizeof((*items)->why), "%s", why);
			continue;
		}
		*comma = '\0';
		if (comma[1] == '/')
			snprintf(path, sizeof(path), "%s", comma + 1);
		else
			snprintf(path, sizeof(path), "%s/%s", dir, comma + 1);
		if (add_item(items, n, cap, line, path) < 0)
			goto out_too_many;
		(*items)[*n - 1].line = lineno;
	}
	free(text);
	return 0;

out_too_many:
	free(text);
	return vg_errf(err, errlen, -E2BIG, "%s: more than %d rows", csv, MAX_ENTRIES);
}

static int cmp_item_pos(const void *a, const void *b)
{
	const struct item *x = *(const struct item *const *)a, *y = *(const struct item *const *)b;
	int c = strcmp(x->subject, y->subject);

	return c ? c : x->line < y->line ? -1 : x->line > y->line;
}

/*
 * A subject enrolled twice in one watchlist would make its alerts ambiguous (which photo
 * matched?), so the whole import is refused, naming the id and both rows or files. Sorts N
 * pointers: O(N log N), N <= MAX_ENTRIES. 0, or -EEXIST (-ENOMEM) with ERR.
 */
static int check_duplicates(const struct item *items, size_t n, char *err, size_t errlen)
{
	const struct item **p = malloc((n ? n : 1) * sizeof(*p));
	size_t k = 0;
	int rc = 0;

	if (!p)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		if (!items[i].why[0]) /* a malformed row's "subject" is its line number */
			p[k++] = &items[i];
	qsort(p, k, sizeof(*p), cmp_item_pos);
	for (size_t i = 1; i < k && !rc; i++) {
		const struct item *a = p[i - 1], *b = p[i];
		if (strcmp(a->subject, b->subject) != 0)
			continue;
		if (a->line)
			rc = vg_errf(err, errlen, -EEXIST, "subject '%s' appears twice: line %u (%s) and line %u (%s); "
				     "enrol one image per subject", a->subject, a->line, a->path, b->line, b->path);
		else
			rc = vg_errf(err, errlen, -EEXIST, "subject '%s' appears twice: %s and %s; enrol one image per "
				     "subject", a->subject, a->path, b->path);
	}
	free(p);
	return rc;
}

/* A growable buffer of enrolment crop records (mgmt.h's MGMT_WATCHLIST_FACE_MAX format), capped at 1 GiB. */
struct crops {
	uint8_t *buf;
	size_t len, cap;
};

#ifdef HAVE_VIGIL_MGMT_PIPELINE
/*
 * Append SUBJECT's aligned crop (the box the descriptor saw, at most 512 px a side) of IMG as a
 * JPEG: what a reviewer compares an alert's crop with. Best effort: a crop that cannot be made
 * leaves the subject enrolled without one.
 */
static void crop_add(struct crops *c, tjhandle tj, const struct vg_image *img, const struct gpu_face *f,
		     const char *subject)
{
	int x0 = (int)fmax(0, f->align[0]), y0 = (int)fmax(0, f->align[1]);
	int x1 = (int)fmin(img->width, f->align[0] + f->align[2]), y1 = (int)fmin(img->height, f->align[1] + f->align[3]);
	int cw = x1 - x0, ch = y1 - y0;
	double step = fmax(1.0, fmax(cw, ch) / 512.0);
	unsigned char *jpeg = NULL;
	unsigned long jlen = 0;
	size_t slen = strlen(subject);

	if (!tj || cw <= 0 || ch <= 0)
		return;
	int w = (int)(cw / step), h = (int)(ch / step);
	uint8_t *rgb = malloc((size_t)w * h * 3);
	if (!rgb)
		return;
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			memcpy(rgb + ((size_t)y * w + x) * 3,
			       img->rgb + ((size_t)(y0 + (int)(y * step)) * img->width + (size_t)(x0 + (int)(x * step))) * 3, 3);
	if (tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpeg, &jlen, TJSAMP_444, 92, TJFLAG_ACCURATEDCT) == 0 &&
	    jlen <= MGMT_WATCHLIST_FACE_MAX && c->len + 6 + slen + jlen <= (1u << 30)) {
		if (c->len + 6 + slen + jlen > c->cap) {
			size_t ncap = (c->cap ? c->cap * 2 : 1u << 20) + 6 + slen + jlen;
			uint8_t *nb = malloc(ncap);
			if (nb && c->buf) {
				memcpy(nb, c->buf, c->len);
				vg_scrub(c->buf, c->len);
			}
			free(c->buf);
			c->buf = nb;
			c->cap = nb ? ncap : 0;
			if (!nb)
				c->len = 0;
		}
		if (c->buf) {
			uint8_t *p = c->buf + c->len;
			p[0] = (uint8_t)slen, p[1] = (uint8_t)(slen >> 8);
			memcpy(p + 2, subject, slen);
			for (int i = 0; i < 4; i++)
				p[2 + slen + i] = (uint8_t)(jlen >> (8 * i));
			memcpy(p + 6 + slen, jpeg, jlen);
			c->len += 6 + slen + jlen;
		}
	}
	if (jpeg) {
		vg_scrub(jpeg, jlen);
		tjFree(jpeg);
	}
	vg_scrub(rgb, (size_t)w * h * 3);
	free(rgb);
}
#endif

/* A memfd holding LEN bytes of BUF, read back from offset 0 by vigild; -1 on failure. */
static int memfd_with(const char *name, const void *buf, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);
	size_t done = 0;

	while (fd >= 0 && done < len) {
		ssize_t w = write(fd, (const uint8_t *)buf + done, len - done);
		if (w <= 0) {
			close(fd);
			return -1;
		}
		done += (size_t)w;
	}
	return fd;
}

/* One import: its command line, the images to enrol, and what has been made of them so far. */
struct import {
	const char *out_path, *csv, *models, *name, *socket;
	bool json;
	struct match_watchlist_def wl;
	struct item *items;
	size_t n, cap, enrolled;
	float *desc;                  /* enrolled x d, scrubbed before free */
	unsigned d;                   /* the model's descriptor size */
	bool threshold_given;         /* --threshold; else the model's own */
	struct match_entry *entries;  /* enrolled, pointing into desc */
	struct gpu_model *model;
	struct crops crops;           /* with --name only: the enrolment crops vigild keeps */
#ifdef HAVE_VIGIL_MGMT_PIPELINE
	tjhandle tj;
#endif
	json_t *registered;           /* vigild's record, with --name */
	int refused;
	int out_fd;                   /* --out, created before the work (-1: none); unlinked on failure */
};

/* The options after `import` into IM; 0, or 2 after one line on stderr. */
static int import_parse(int argc, char **argv, struct import *im)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },    { "id", required_argument, NULL, 'i' },
		{ "threshold", required_argument, NULL, 't' }, { "models", required_argument, NULL, 'm' },
		{ "csv", required_argument, NULL, 'c' },    { "json", no_argument, NULL, 'j' },
		{ "name", required_argument, NULL, 'n' },   { "socket", required_argument, NULL, 's' }, { NULL, 0, NULL, 0 },
	};
	int c;

	im->json = vigilctl_global.json; /* main() took --json and --socket wherever they stood */
	im->socket = vigilctl_global.socket;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'o': im->out_path = optarg; break;
		case 'c': im->csv = optarg; break;
		case 'm': im->models = optarg; break;
		case 'j': im->json = true; break;
		case 'n': im->name = optarg; break;
		case 's': im->socket = optarg; break;
		case 'i':
			im->wl.id = (uint32_t)strtoul(optarg, &end, 10);
			if (*end || !im->wl.id)
				return vigilctl_usage("import: --id '%s' is not a positive number", optarg);
			break;
		case 't':
			im->wl.threshold = strtof(optarg, &end);
			/* The widest range (L2's); a cosine model's is checked once the model is open. */
			if (*end || !(im->wl.threshold > 0 && im->wl.threshold <= MGMT_WATCHLIST_L2_MAX))
				return vigilctl_usage("import: --threshold '%s' is outside (0, %.0f], the range of an L2 distance",
						      optarg, MGMT_WATCHLIST_L2_MAX);
			im->threshold_given = true;
			break;
		case ':':
			return vigilctl_usage("import: %s needs a value", argv[optind]);
		default:
			return vigilctl_usage("import: unknown option '%s'", argv[optind]);
		}
	}
	int first = optind + 1; /* getopt saw argv + 1 */
	if (!im->out_path == !im->name || (im->csv ? first != argc : first + 1 != argc))
		return vigilctl_usage("import needs --name N (register with vigild) or --out FILE (write a file), "
				      "and a folder or --csv FILE");
	return 0;
}

/* Enrol IT: its descriptor (and, with --name, its crop) appended to IM; else WHY says why not. */
static void enrol_item(struct import *im, const struct item *it, char *why, size_t whylen)
{
	struct gpu_face faces[8];
	struct vg_image img;
	char err[512];
	int nf;

	if (it->why[0]) {
		snprintf(why, whylen, "%s", it->why);
		return;
	}
	if (vg_image_load(it->path, &img, err, sizeof(err)) < 0) {
		snprintf(why, whylen, "unreadable: %s", err);
		return;
	}
	nf = gpu_faces_run(im->model, img.rgb, img.width, img.height, faces, 8);
	if (nf == 0)
		snprintf(why, whylen, "no face found");
	else if (nf > 1)
		snprintf(why, whylen, "%d faces: enrol an image of the one person", nf);
	else if (faces[0].quality.interocular_px < MIN_INTEROCULAR_PX)
		snprintf(why, whylen, "too low quality: eyes %.0f px apart, need %.0f",
			 faces[0].quality.interocular_px, MIN_INTEROCULAR_PX);
	else if (nf < 0)
		snprintf(why, whylen, "%s", vg_strerror(nf));
	if (!why[0]) {
		float *d = im->desc + im->enrolled * im->d;

		memcpy(d, faces[0].descriptor, im->d * sizeof(float));
		im->entries[im->enrolled] = (struct match_entry){ it->subject, im->wl.id, d };
		im->enrolled++;
#ifdef HAVE_VIGIL_MGMT_PIPELINE
		if (im->name)
			crop_add(&im->crops, im->tj, &img, &faces[0], it->subject);
#endif
	}
	gpu_faces_retire(faces, nf > 0 ? nf : 0);
	vg_image_release(&img);
}

/* One line per image: enrolled on stdout, refused on stderr; with --json, one element of "results". */
static void report_item(const struct import *im, size_t i, const char *why)
{
	const struct item *it = &im->items[i];

	if (im->json)
		printf("%s{\"subject\":\"%s\",\"image\":\"%s\",\"enrolled\":%s%s%s%s}", i ? "," : "", it->subject,
		       it->path, why[0] ? "false" : "true", why[0] ? ",\"reason\":\"" : "", why, why[0] ? "\"" : "");
	else if (why[0] && it->why[0])
		fprintf(stderr, "vigilctl: %s %s: refused: %s\n", it->path, it->subject, why);
	else if (why[0])
		fprintf(stderr, "vigilctl: %s: refused: %s\n", it->path, why);
	else
		printf("enrolled %s from %s\n", it->subject, it->path);
}

/* Hand the encoded watchlist BUF (scrubbed and freed here) to vigild with the crops; 0, or 1 after saying why. */
static int import_register(struct import *im, void *buf, size_t len)
{
	/* Straight from memory to vigild's custody: no copy of the watchlist on this disk. */
	int wfd = memfd_with("vigil-watchlist", buf, len);
	int cfd = im->crops.len ? memfd_with("vigil-crops", im->crops.buf, im->crops.len) : -1;
	int rc;

	vg_scrub(buf, len);
	free(buf);
	if (wfd < 0) {
		fprintf(stderr, "vigilctl: memfd: %s\n", vg_strerror(-errno));
		return 1;
	}
	rc = vigilctl_watchlist_register(im->socket, wfd, cfd, im->name, 0, &im->registered);
	close(wfd);
	if (cfd >= 0)
		close(cfd);
	return rc;
}

/* Write the encoded watchlist BUF (scrubbed and freed here) to --out, mode 0600; 0, or 1 after saying why. */
static int import_write(struct import *im, void *buf, size_t len)
{
	int fd = im->out_fd;
	ssize_t w = write(fd, buf, len);
	int rc = 0;

	im->out_fd = -1;
	if (w != (ssize_t)len || fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "vigilctl: cannot write %s: %s\n", im->out_path, vg_strerror(w < 0 ? -errno : -ENOSPC));
		unlink(im->out_path);
		rc = 1;
	}
	vg_scrub(buf, len);
	free(buf);
	return rc;
}

/* Encode the enrolled descriptors as a watchlist file and register it (--name) or write it (--out). */
static int import_deliver(struct import *im)
{
	void *buf = NULL;
	size_t len = 0;
	char err[512];

	/* the model's id goes into the file, so the seal covers which model enrolled it */
	const struct gpu_model_info *m = gpu_model_info_of(im->model);

	if (match_file_encode(m->id, im->d, m->metric ? MATCH_METRIC_COSINE : MATCH_METRIC_L2, &im->wl, 1, im->entries,
			      (unsigned)im->enrolled, &buf, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		return 1;
	}
	return im->name ? import_register(im, buf, len) : import_write(im, buf, len);
}

static void import_summary(const struct import *im)
{
	if (im->json && im->name)
		printf("],\"enrolled\":%zu,\"refused\":%d,\"watchlist\":\"%s\"}\n", im->enrolled, im->refused,
		       im->registered ? json_string_value(json_object_get(im->registered, "id")) : "");
	else if (im->json)
		printf("],\"enrolled\":%zu,\"refused\":%d,\"out\":\"%s\"}\n", im->enrolled, im->refused,
		       im->enrolled ? im->out_path : "");
	else
		printf("%zu enrolled in watchlist %u (threshold %.2f), %d refused%s%s\n", im->enrolled, im->wl.id,
		       im->wl.threshold, im->refused, im->enrolled && im->out_path ? ": " : "",
		       im->enrolled && im->out_path ? im->out_path : "");
	if (im->registered && !im->json)
		vigilctl_watchlist_print_registered(im->registered);
}

int vigilctl_watchlist_import(int argc, char **argv)
{
	struct import im = { .wl = { 1, GPU_MATCH_THRESHOLD }, .out_fd = -1 };
	char err[512];
	int rc;

	if (argc < 2 || strcmp(argv[1], "import") != 0)
		return vigilctl_usage("import (--name N | --out FILE) [--id N] [--threshold T] (DIR | --csv FILE)");
	if (import_parse(argc, argv, &im))
		return 2;
	/* --out first: an existing file or a FIFO is refused before minutes of embedding, not after. */
	im.models = vigilctl_models(im.models);
	if (im.out_path && (im.out_fd = vigilctl_out_open(im.out_path)) < 0)
		return 1;
	rc = im.csv ? read_csv(im.csv, &im.items, &im.n, &im.cap, err, sizeof(err))
		    : list_dir(argv[argc - 1], &im.items, &im.n, &im.cap, err, sizeof(err));
	if (rc == 0)
		rc = check_duplicates(im.items, im.n, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "vigilctl: watchlist import: %s\n", err);
		rc = 1;
		goto out;
	}
	if (im.n == 0) {
		fprintf(stderr, "vigilctl: no images to enrol\n");
		rc = 1;
		goto out;
	}
	if (gpu_model_open(&im.model, im.models, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: watchlist import: %s\n", err);
		rc = 2; /* like faces: --models (or $VIGIL_MODELS) that names no model is a usage error */
		goto out;
	}
	/* the model decides the descriptor's size, its metric, and the default threshold */
	const struct gpu_model_info *info = gpu_model_info_of(im.model);
	im.d = info->descriptor_dim;
	if (!im.threshold_given)
		im.wl.threshold = (float)info->threshold;
	if (info->metric == 1 && im.wl.threshold > MGMT_WATCHLIST_COSINE_MAX) {
		rc = vigilctl_usage("import: --threshold %g is outside (0, %.0f], the range of a cosine similarity (model %s)",
				    (double)im.wl.threshold, MGMT_WATCHLIST_COSINE_MAX, info->id);
		goto out;
	}
	im.desc = calloc(im.n, im.d * sizeof(float));
	im.entries = calloc(im.n, sizeof(*im.entries));
	if (!im.desc || !im.entries) {
		rc = 1;
		goto out;
	}
#ifdef HAVE_VIGIL_MGMT_PIPELINE
	im.tj = im.name ? tjInitCompress() : NULL;
#endif
	if (im.json)
		printf("{\"results\":[");
	for (size_t i = 0; i < im.n; i++) {
		char why[640] = "";

		enrol_item(&im, &im.items[i], why, sizeof(why));
		if (why[0])
			im.refused++;
		report_item(&im, i, why);
	}
	if (im.enrolled && (rc = import_deliver(&im)) != 0)
		goto out;
	import_summary(&im);
	rc = im.refused || !im.enrolled ? 1 : 0;
out:
	if (im.out_fd >= 0) { /* nothing was written: the empty file made above goes */
		close(im.out_fd);
		unlink(im.out_path);
	}
	json_decref(im.registered);
#ifdef HAVE_VIGIL_MGMT_PIPELINE
	if (im.tj)
		tjDestroy(im.tj);
#endif
	if (im.crops.buf)
		vg_scrub(im.crops.buf, im.crops.len);
	free(im.crops.buf);
	if (im.desc)
		vg_scrub(im.desc, im.n * im.d * sizeof(float));
	free(im.desc);
	free(im.entries);
	free(im.items);
	gpu_model_close(&im.model);
	return rc;
}
