/*
 * `vigilctl eval`: how often the on-box face model is wrong, measured on a labelled set of still
 * images (issue 17), with no daemon. Run by a person or a script from vigilctl's main thread.
 *
 *   vigilctl eval [--json] [--models DIR] [--backend onednn|reference|bf16] [--pad] [--nonmated DIR]
 *                 [--split] [--fuse K] [--det-png FILE] [--det-csv FILE] [--threshold T]
 *                 [--descriptors-out FILE] (LABELLED_DIR | --descriptors FILE)
 *   vigilctl eval --calibrate --target-fpir R --watchlist-size N [--save] ...
 *
 * LABELLED_DIR holds one folder per person; each image's highest-scoring face is described with
 * the model (as `vigilctl faces` does), and match_eval (matcher/include/match_eval.h) measures
 * the descriptors: verification (DET, EER, FNMR at FMR), open-set identification, fusion. The
 * output says what it measured on: the model's id and digest, the backend, whether images were
 * padded, and every image left out (unreadable, no face) or with several faces.
 * --descriptors-out writes the descriptors (JSON, mode 0600: biometric data of the labelled set)
 * so that a later run (--descriptors) or another program can measure again without the nets.
 * --calibrate builds a match_calib from the impostor scores (labelled impostor pairs, and with
 * --nonmated also every pair involving a non-mated face) and prints the threshold for a target
 * FPIR at a watchlist size; --save writes it as MODELS/calibration.json.
 * Exit: 0; 1 with one line on stderr (no model, a set with fewer than 2 people, output not
 * written); 2 on bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu.h"
#include "match_calib.h"
#include "match_eval.h"
#include "vg_image.h"
#include "vigilctl_eval.h"
#include "vigilctl_int.h"

#define EVAL_IMAGES_MAX 10000u    /* images, labelled and non-mated: 50 M pairs, ~800 MB of scores */
#define BOOTSTRAP_ROUNDS 500
#define BOOTSTRAP_SEED 17
#define CALIB_TAIL_FMR 0.2        /* the calibration keeps impostor scores up to FMR 0.2 */

struct opts {
	const char *models, *backend, *nonmated_dir, *det_png, *det_csv, *desc_in, *desc_out, *dir;
	int pad, split, calibrate, save, json;
	unsigned fuse_k;
	double threshold, target_fpir;
	unsigned long long watchlist;
};

void eval_set_free(struct eval_set *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->path[i]);
	for (size_t i = 0; i < s->n_nonmated; i++)
		free(s->nm_path[i]);
	for (unsigned p = 0; p < s->n_people; p++)
		free(s->people[p]);
	for (size_t i = 0; i < s->n_skips; i++)
		free(s->skips[i].path);
	if (s->desc)
		memset(s->desc, 0, s->n * s->model.descriptor_dim * sizeof(float));
	if (s->nm_desc)
		memset(s->nm_desc, 0, s->n_nonmated * s->model.descriptor_dim * sizeof(float));
	free(s->desc);
	free(s->person);
	free(s->path);
	free(s->nm_desc);
	free(s->nm_path);
	free(s->people);
	free(s->skips);
	*s = (struct eval_set){ 0 };
}

/* Grow *P (CAP elements of SIZE) to hold N + 1; 0 or -ENOMEM. */
int eval_grow(void **p, size_t *cap, size_t n, size_t size)
{
	void *q;
	size_t c;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 64;
	q = realloc(*p, c * size);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

int eval_skip_add(struct eval_set *s, const char *path, const char *why)
{
	if (eval_grow((void **)&s->skips, &s->cap_skips, s->n_skips, sizeof(*s->skips)) < 0)
		return -ENOMEM;
	s->skips[s->n_skips].path = strdup(path);
	snprintf(s->skips[s->n_skips].why, sizeof(s->skips[0].why), "%s", why);
	if (!s->skips[s->n_skips].path)
		return -ENOMEM;
	s->n_skips++;
	return 0;
}

/* IMG with black borders of half its size on every side (the SSD needs context around a face). */
static int pad_image(struct vg_image *img)
{
	uint32_t w = img->width, h = img->height, pw = w + 2 * (w / 2), ph = h + 2 * (h / 2);
	uint8_t *rgb;

	if (pw > VG_IMAGE_MAX_SIDE || ph > VG_IMAGE_MAX_SIDE)
		return -EFBIG;
	rgb = calloc((size_t)pw * ph, 3);
	if (!rgb)
		return -ENOMEM;
	for (uint32_t y = 0; y < h; y++)
		memcpy(&rgb[((size_t)(y + h / 2) * pw + w / 2) * 3], &img->rgb[(size_t)y * w * 3], (size_t)w * 3);
	vg_image_release(img);
	*img = (struct vg_image){ pw, ph, rgb, VG_IMAGE_UNKNOWN };
	return 0;
}

/*
 * PATH's highest-scoring face's descriptor into DESC: 1; 0 when the image is skipped (counted and
 * listed in S); -ENOMEM. FACES: GPU_MAX_FACES of scratch.
 */
static int describe(struct eval_set *s, struct gpu_model *model, struct gpu_face *faces, const char *path,
		    float *desc)
{
	struct vg_image img = { 0 };
	char err[256];
	int n, rc;

	s->files++;
	rc = vg_image_load(path, &img, err, sizeof(err));
	if (rc == -ENOMEM)
		return rc;
	if (rc < 0) {
		s->unreadable++;
		return eval_skip_add(s, path, err);
	}
	if (s->padded && (rc = pad_image(&img)) < 0) {
		vg_image_release(&img);
		if (rc == -ENOMEM)
			return rc;
		s->unreadable++;
		return eval_skip_add(s, path, "too large to pad");
	}
	n = gpu_faces_run(model, img.rgb, img.width, img.height, faces, GPU_MAX_FACES);
	vg_image_release(&img);
	if (n <= 0) {
		s->no_face += n == 0;
		s->unreadable += n < 0;
		return eval_skip_add(s, path, n == 0 ? "no face found" : vg_strerror(n));
	}
	s->several += n > 1;
	memcpy(desc, faces[0].descriptor, s->model.descriptor_dim * sizeof(float)); /* faces come in score order */
	gpu_faces_retire(faces, n);
	return 1;
}

/* Room in S's labelled arrays for one more image; 0 or -ENOMEM. */
int eval_reserve(struct eval_set *s)
{
	size_t c = s->cap ? 2 * s->cap : 64;
	void *q;

	if (s->n < s->cap)
		return 0;
	if (!(q = realloc(s->path, c * sizeof(*s->path))))
		return -ENOMEM;
	s->path = q;
	if (!(q = realloc(s->person, c * sizeof(*s->person))))
		return -ENOMEM;
	s->person = q;
	if (!(q = realloc(s->desc, c * s->model.descriptor_dim * sizeof(float))))
		return -ENOMEM;
	s->desc = q;
	s->cap = c;
	return 0;
}

static int not_hidden(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* The entries of DIR that are folders (WANT_DIRS) or regular files, in natural order; -errno. */
static int list_dir(const char *dir, int want_dirs, char ***out, size_t *n_out)
{
	struct dirent **ents;
	char **names;
	size_t n = 0;
	int m = scandir(dir, &ents, not_hidden, versionsort);

	if (m < 0)
		return -errno;
	names = calloc((size_t)m + 1, sizeof(*names));
	for (int i = 0; i < m; i++) {
		struct stat st;
		char *path = NULL;

		if (names && asprintf(&path, "%s/%s", dir, ents[i]->d_name) >= 0 && stat(path, &st) == 0 &&
		    (want_dirs ? S_ISDIR(st.st_mode) : !S_ISDIR(st.st_mode)))
			names[n++] = path;
		else
			free(path);
		free(ents[i]);
	}
	free(ents);
	if (!names)
		return -ENOMEM;
	*out = names;
	*n_out = n;
	return 0;
}

static void free_list(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* One person's folder: every image described into S under label P. */
static int load_person(struct eval_set *s, struct gpu_model *model, struct gpu_face *faces, const char *dir,
		       unsigned p)
{
	char **files;
	size_t n;
	int rc = list_dir(dir, 0, &files, &n);

	if (rc < 0)
		return eval_skip_add(s, dir, vg_strerror(rc));
	for (size_t i = 0; i < n && rc >= 0; i++) {
		if (s->n + s->n_nonmated >= EVAL_IMAGES_MAX) {
			rc = -E2BIG;
			break;
		}
		if (eval_reserve(s) < 0) {
			rc = -ENOMEM;
			break;
		}
		rc = describe(s, model, faces, files[i], &s->desc[s->n * s->model.descriptor_dim]);
		if (rc == 1) {
			s->person[s->n] = p;
			s->path[s->n++] = files[i];
			files[i] = NULL;
		}
	}
	free_list(files, n);
	return rc < 0 ? rc : 0;
}

static int load_nonmated(struct eval_set *s, struct gpu_model *model, struct gpu_face *faces, const char *dir)
{
	char **files;
	size_t n;
	int rc = list_dir(dir, 0, &files, &n);

	if (rc < 0)
		return rc;
	s->nm_desc = malloc((n + 1) * s->model.descriptor_dim * sizeof(float));
	s->nm_path = calloc(n + 1, sizeof(*s->nm_path));
	if (!s->nm_desc || !s->nm_path)
		rc = -ENOMEM;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		if (s->n + s->n_nonmated >= EVAL_IMAGES_MAX) {
			rc = -E2BIG;
			break;
		}
		rc = describe(s, model, faces, files[i], &s->nm_desc[s->n_nonmated * s->model.descriptor_dim]);
		if (rc == 1) {
			s->nm_path[s->n_nonmated++] = files[i];
			files[i] = NULL;
		}
	}
	free_list(files, n);
	return rc < 0 ? rc : 0;
}

/* Describe LABELLED_DIR (and --nonmated) with the model; 0, or 1 after one line on stderr. */
static int load_images(struct eval_set *s, const struct opts *o)
{
	struct gpu_model *model = NULL;
	struct gpu_face *faces = calloc(GPU_MAX_FACES, sizeof(*faces));
	const char *models = vigilctl_models(o->models);
	enum gpu_backend be = GPU_BACKEND_ONEDNN;
	char err[512], **dirs = NULL;
	size_t n_dirs = 0;
	int rc;

	if (!faces)
		goto out_nomem;
	if (gpu_model_open(&model, models, err, sizeof(err))) {
		fprintf(stderr, "vigilctl eval: %s\n", err);
		free(faces);
		return 1;
	}
	if (strcmp(o->backend, "reference") == 0)
		be = GPU_BACKEND_REFERENCE;
	else if (strcmp(o->backend, "bf16") == 0)
		be = GPU_BACKEND_ONEDNN_BF16;
	rc = gpu_model_set_backend(model, be);
	if (rc == -ENOTSUP) {
		fprintf(stderr, "vigilctl eval: --backend bf16: this CPU has no bf16 kernels\n");
		goto out_close;
	}
	snprintf(s->backend, sizeof(s->backend), "%s%s", o->backend, rc == -EIO ? " (some layers on the reference kernels)" : "");
	s->model = *gpu_model_info_of(model);
	s->padded = o->pad;
	rc = list_dir(o->dir, 1, &dirs, &n_dirs);
	if (rc < 0) {
		fprintf(stderr, "vigilctl eval: %s: %s\n", o->dir, vg_strerror(rc));
		goto out_close;
	}
	s->people = calloc(n_dirs + 1, sizeof(*s->people));
	if (!s->people)
		goto out_nomem;
	for (size_t d = 0; d < n_dirs; d++) {
		size_t before = s->n;

		rc = load_person(s, model, faces, dirs[d], s->n_people);
		if (rc < 0)
			break;
		if (s->n > before) {
			const char *slash = strrchr(dirs[d], '/');

			s->people[s->n_people++] = strdup(slash ? slash + 1 : dirs[d]);
		} else {
			s->people_empty++;
		}
	}
	if (rc == 0 && o->nonmated_dir && (rc = load_nonmated(s, model, faces, o->nonmated_dir)) < 0 && rc != -ENOMEM &&
	    rc != -E2BIG) {
		fprintf(stderr, "vigilctl eval: --nonmated %s: %s\n", o->nonmated_dir, vg_strerror(rc));
		goto out_close;
	}
	if (rc == -E2BIG) {
		fprintf(stderr, "vigilctl eval: more than %u images: refusing to go on\n", EVAL_IMAGES_MAX);
		goto out_close;
	}
	if (rc < 0)
		goto out_nomem;
	free_list(dirs, n_dirs);
	free(faces);
	gpu_model_close(&model);
	return 0;
out_nomem:
	fprintf(stderr, "vigilctl eval: out of memory\n");
out_close:
	free_list(dirs, n_dirs);
	free(faces);
	gpu_model_close(&model);
	return 1;
}

static double parse_double(const char *v, int *bad)
{
	char *end;
	double d = strtod(v, &end);

	*bad |= end == v || *end != '\0' || !isfinite(d);
	return d;
}

/* Options into O; 0, or the exit status (2, or 0 for --help) to return at once. */
static int parse_opts(int argc, char **argv, struct opts *o)
{
	int bad = 0;

	*o = (struct opts){ .backend = "onednn", .threshold = NAN, .json = vigilctl_global.json };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;

		if (strcmp(a, "--pad") == 0) {
			takes = 0, o->pad = 1;
		} else if (strcmp(a, "--split") == 0) {
			takes = 0, o->split = 1;
		} else if (strcmp(a, "--calibrate") == 0) {
			takes = 0, o->calibrate = 1;
		} else if (strcmp(a, "--save") == 0) {
			takes = 0, o->save = 1;
		} else if (strcmp(a, "--json") == 0) {
			takes = 0, o->json = 1;
		} else if (a[0] == '-' && a[1] == '-' && !v) {
			return vigilctl_usage("%s needs a value, or is unknown", a);
		} else if (strcmp(a, "--models") == 0) {
			o->models = v;
		} else if (strcmp(a, "--backend") == 0) {
			o->backend = v;
			bad |= strcmp(v, "onednn") && strcmp(v, "reference") && strcmp(v, "bf16");
		} else if (strcmp(a, "--nonmated") == 0) {
			o->nonmated_dir = v;
		} else if (strcmp(a, "--fuse") == 0) {
			double k = parse_double(v, &bad);

			bad |= k < 1 || k > 64 || k != floor(k);
			o->fuse_k = bad ? 0 : (unsigned)k;
		} else if (strcmp(a, "--det-png") == 0) {
			o->det_png = v;
		} else if (strcmp(a, "--det-csv") == 0) {
			o->det_csv = v;
		} else if (strcmp(a, "--descriptors") == 0) {
			o->desc_in = v;
		} else if (strcmp(a, "--descriptors-out") == 0) {
			o->desc_out = v;
		} else if (strcmp(a, "--threshold") == 0) {
			o->threshold = parse_double(v, &bad);
			bad |= o->threshold < 0;
		} else if (strcmp(a, "--target-fpir") == 0) {
			o->target_fpir = parse_double(v, &bad);
			bad |= !(o->target_fpir > 0 && o->target_fpir < 1);
		} else if (strcmp(a, "--watchlist-size") == 0) {
			double n = parse_double(v, &bad);

			bad |= n < 1 || n > 1e9 || n != floor(n);
			o->watchlist = bad ? 0 : (unsigned long long)n;
		} else if (a[0] == '-' && a[1] != '\0') {
			return vigilctl_usage("unknown option '%s'", a);
		} else if (!o->dir) {
			takes = 0, o->dir = a;
		} else {
			return vigilctl_usage("one LABELLED_DIR only ('%s' is a second)", a);
		}
		if (bad)
			return vigilctl_usage("%s '%s' is not a valid value", a, v ? v : "");
		i += takes;
	}
	if (!o->dir == !o->desc_in)
		return vigilctl_usage("give LABELLED_DIR or --descriptors FILE (one of them)");
	if (o->desc_in && (o->pad || o->nonmated_dir || (o->models && !o->save) || strcmp(o->backend, "onednn")))
		return vigilctl_usage("--descriptors measures what the file holds: --pad, --nonmated, --models (but for "
				      "--save) and --backend belong to the run that wrote it");
	if (o->calibrate && (o->target_fpir == 0 || o->watchlist == 0))
		return vigilctl_usage("--calibrate needs --target-fpir R and --watchlist-size N");
	if (o->save && (!o->calibrate || !o->models))
		return vigilctl_usage("--save needs --calibrate and --models DIR (where calibration.json goes)");
	return -1;
}

int vigilctl_eval(int argc, char **argv)
{
	struct eval_set s = { 0 };
	struct match_eval_report r = { 0 };
	struct opts o;
	int rc = parse_opts(argc, argv, &o);

	if (rc >= 0)
		return rc;
	s.from = o.desc_in ? o.desc_in : o.dir;
	s.nonmated_from = o.nonmated_dir;
	rc = o.desc_in ? eval_descriptors_read(&s, o.desc_in) : load_images(&s, &o);
	if (rc)
		goto out;
	if (isnan(o.threshold))
		o.threshold = match_calib_score_of_threshold(s.model.metric, s.model.threshold); /* the model's own */
	if (s.n_people < 2) {
		fprintf(stderr, "vigilctl eval: %s: %u %s with a usable face; a measure needs at least 2 people "
				"(one folder each)\n", o.dir ? o.dir : o.desc_in, s.n_people,
			s.n_people == 1 ? "person" : "people");
		rc = 1;
		goto out;
	}
	rc = 1;
	if (o.desc_out && eval_descriptors_write(&s, o.desc_out))
		goto out;
	if (eval_measure(&s, &o.threshold, o.split, o.fuse_k, BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, &r))
		goto out;
	if (o.det_csv && eval_det_csv(&r, o.det_csv))
		goto out;
	if (o.det_png && eval_det_png(&r, &s, o.det_png))
		goto out;
	rc = eval_report(&s, &r, &(struct eval_print){ .json = o.json, .split = o.split, .calibrate = o.calibrate,
						       .save = o.save, .models = o.models, .target_fpir = o.target_fpir,
						       .watchlist = o.watchlist, .tail_fmr = CALIB_TAIL_FMR,
						       .det_png = o.det_png, .det_csv = o.det_csv });
out:
	match_eval_report_free(&r);
	eval_set_free(&s);
	return rc;
}
