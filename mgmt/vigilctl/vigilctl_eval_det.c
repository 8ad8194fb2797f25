/*
 * `vigilctl eval --det-csv FILE --det-png FILE` (vigilctl_eval.c), on vigilctl's main thread: the
 * DET curve of a match_eval report written as CSV (threshold,fmr,fnmr, one line per distinct
 * score) and drawn as a PNG through libpng: FMR against FNMR on log axes, one grid line a decade,
 * the EER and the FNMR-at-FMR operating points marked with their thresholds, and the FMR range
 * the impostor pairs cannot show (below 3/pairs) shaded. Text is drawn with a 5x7 bitmap font
 * of our own (capitals, digits, a few signs): a font library for a dozen labels is not worth it.
 */
#include <errno.h>
#include <math.h>
#include <png.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match_eval.h"
#include "vigilctl_eval.h"
#include "vigilctl_int.h"

#define W 960
#define H 720
#define LEFT 100
#define RIGHT 40
#define TOP 70
#define BOTTOM 90
#define SCALE 2   /* font pixels per glyph pixel */

int eval_det_csv(const struct match_eval_report *r, const char *path)
{
	int fd = vigilctl_out_open(path);
	FILE *f;
	int bad;

	if (fd < 0)
		return 1;
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		fprintf(stderr, "vigilctl eval: --det-csv %s: %s\n", path, strerror(errno));
		return 1;
	}
	fprintf(f, "threshold,fmr,fnmr\n");
	for (size_t i = 0; i < r->n_det; i++)
		fprintf(f, "%.17g,%.17g,%.17g\n", r->det[i].threshold, r->det[i].fmr, r->det[i].fnmr);
	bad = ferror(f);
	bad |= fclose(f) != 0;
	if (bad)
		fprintf(stderr, "vigilctl eval: --det-csv %s: writing failed\n", path);
	return bad;
}

/* ---- a canvas ------------------------------------------------------------------------------ */

struct canvas {
	uint8_t *px; /* W x H RGB */
};

static void dot(struct canvas *c, int x, int y, const uint8_t rgb[3])
{
	if (x >= 0 && x < W && y >= 0 && y < H)
		memcpy(&c->px[((size_t)y * W + x) * 3], rgb, 3);
}

static void rect(struct canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3])
{
	for (int y = y0; y <= y1; y++)
		for (int x = x0; x <= x1; x++)
			dot(c, x, y, rgb);
}

/* A line of width 1 + 2 HALF (Bresenham), every DASH pixels on and off when DASH > 0. */
static void line(struct canvas *c, int x0, int y0, int x1, int y1, int half, int dash, const uint8_t rgb[3])
{
	int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;

	for (int n = 0;; n++) {
		int e2 = 2 * e;

		if (!dash || (n / dash) % 2 == 0)
			rect(c, x0 - half, y0 - half, x0 + half, y0 + half, rgb);
		if (x0 == x1 && y0 == y1)
			break;
		if (e2 >= dy) {
			e += dy;
			x0 += sx;
		}
		if (e2 <= dx) {
			e += dx;
			y0 += sy;
		}
	}
}

/* 5x7 glyphs, one row a byte, bit 4 the left column. */
static const char glyph_chars[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ.-():%,=/+^<>";
static const uint8_t glyphs[][7] = {
	{ 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E }, { 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E },
	{ 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F }, { 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E },
	{ 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 }, { 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E },
	{ 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 },
	{ 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E }, { 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C },
	{ 0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 }, { 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E },
	{ 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E }, { 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C },
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F }, { 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F }, { 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 },
	{ 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E }, { 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C },
	{ 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 }, { 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F },
	{ 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 }, { 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 },
	{ 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D }, { 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 },
	{ 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E }, { 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 },
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, { 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 },
	{ 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A }, { 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 },
	{ 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 }, { 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F },
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C }, { 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00 },
	{ 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 }, { 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 },
	{ 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00 }, { 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 },
	{ 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08 }, { 0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00 },
	{ 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 }, { 0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00 },
	{ 0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00 }, { 0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02 },
	{ 0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08 },
};

#define GLYPH_W (6 * SCALE)

/* TEXT at X, Y (its top left), capitals; anything the font lacks is a space. */
static void text(struct canvas *c, int x, int y, const char *t, const uint8_t rgb[3])
{
	for (; *t; t++, x += GLYPH_W) {
		char ch = *t >= 'a' && *t <= 'z' ? (char)(*t - 32) : *t;
		const char *g = ch ? strchr(glyph_chars, ch) : NULL;

		if (!g)
			continue;
		for (int row = 0; row < 7; row++)
			for (int col = 0; col < 5; col++)
				if (glyphs[g - glyph_chars][row] & (0x10 >> col))
					rect(c, x + col * SCALE, y + row * SCALE, x + col * SCALE + SCALE - 1,
					     y + row * SCALE + SCALE - 1, rgb);
	}
}

static int text_width(const char *t)
{
	return (int)strlen(t) * GLYPH_W;
}

/* ---- the plot ------------------------------------------------------------------------------ */

struct axes {
	double xmin, ymin; /* log10 of the smallest FMR and FNMR shown; both end at 1 (log 0) */
};

static int px_x(const struct axes *a, double fmr)
{
	double l = fmr > 0 ? fmax(log10(fmr), a->xmin) : a->xmin;

	return LEFT + (int)lround((l - a->xmin) / -a->xmin * (W - LEFT - RIGHT));
}

static int px_y(const struct axes *a, double fnmr)
{
	double l = fnmr > 0 ? fmax(log10(fnmr), a->ymin) : a->ymin;

	return TOP + (int)lround(l / a->ymin * (H - TOP - BOTTOM));
}

static const uint8_t black[3] = { 0, 0, 0 }, grid[3] = { 215, 215, 215 }, shade[3] = { 238, 238, 238 },
		     blue[3] = { 20, 70, 200 }, red[3] = { 200, 30, 30 }, grey[3] = { 120, 120, 120 };

static void decade_label(char *buf, size_t len, int e)
{
	if (e == 0)
		snprintf(buf, len, "1");
	else if (e >= -2)
		snprintf(buf, len, "%g", pow(10, e));
	else
		snprintf(buf, len, "1E%d", e);
}

static void draw_axes(struct canvas *c, const struct axes *a, const struct match_eval_report *r)
{
	char buf[64];
	int x3 = px_x(a, 3.0 / (double)r->n_impostor);

	/* FMR below 3/pairs cannot be observed on these pairs: shaded, labelled. */
	if (x3 > LEFT) {
		rect(c, LEFT, TOP, x3, H - BOTTOM, shade);
		text(c, LEFT + 6, H - BOTTOM - 42, "FMR < 3/PAIRS:", grey);
		text(c, LEFT + 6, H - BOTTOM - 22, "NOT OBSERVABLE", grey);
	}
	for (int e = (int)a->xmin; e <= 0; e++) {
		int x = px_x(a, pow(10, e));

		line(c, x, TOP, x, H - BOTTOM, 0, 0, grid);
		decade_label(buf, sizeof(buf), e);
		text(c, x - text_width(buf) / 2, H - BOTTOM + 10, buf, black);
	}
	for (int e = (int)a->ymin; e <= 0; e++) {
		int y = px_y(a, pow(10, e));

		line(c, LEFT, y, W - RIGHT, y, 0, 0, grid);
		decade_label(buf, sizeof(buf), e);
		text(c, LEFT - 10 - text_width(buf), y - 7, buf, black);
	}
	line(c, LEFT, TOP, LEFT, H - BOTTOM, 0, 0, black);
	line(c, LEFT, H - BOTTOM, W - RIGHT, H - BOTTOM, 0, 0, black);
	line(c, LEFT, TOP, W - RIGHT, TOP, 0, 0, black);
	line(c, W - RIGHT, TOP, W - RIGHT, H - BOTTOM, 0, 0, black);
	text(c, LEFT + (W - LEFT - RIGHT - text_width("FMR (FALSE MATCH RATE), LOG SCALE")) / 2, H - BOTTOM + 40,
	     "FMR (FALSE MATCH RATE), LOG SCALE", black);
	text(c, 10, TOP - 20, "FNMR (FALSE NON-MATCH RATE), LOG SCALE", black);
	text(c, W - RIGHT - text_width("RATES OF 0 ON THE AXES"), H - BOTTOM + 66, "RATES OF 0 ON THE AXES", grey);
}

/* The operating point at FMR, FNMR: a square, and LABEL beside it. */
static void mark(struct canvas *c, const struct axes *a, double fmr, double fnmr, const char *label,
		 const uint8_t rgb[3])
{
	int x = px_x(a, fmr), y = px_y(a, fnmr);

	rect(c, x - 4, y - 4, x + 4, y + 4, rgb);
	text(c, x + 8, y - 20, label, rgb);
}

static void draw(struct canvas *c, const struct match_eval_report *r, const struct eval_set *s)
{
	struct axes a = { floor(log10(1.0 / (double)r->n_impostor)), floor(log10(1.0 / (double)r->n_genuine)) };
	char buf[160];
	int px = -1, py = -1;

	memset(c->px, 255, (size_t)W * H * 3);
	a.xmin = fmin(a.xmin, -1);
	a.ymin = fmin(a.ymin, -1);
	draw_axes(c, &a, r);
	snprintf(buf, sizeof(buf), "DET: %s, %s, %s", s->model.id, s->backend, s->padded ? "PADDED" : "NOT PADDED");
	text(c, 10, 6, buf, black);
	snprintf(buf, sizeof(buf), "%zu FACES OF %u PEOPLE: %zu GENUINE, %zu IMPOSTOR PAIRS", s->n, s->n_people,
		 r->n_genuine, r->n_impostor);
	text(c, 10, 26, buf, black);
	/* FMR = FNMR, where the EER lies. */
	line(c, px_x(&a, pow(10, fmax(a.xmin, a.ymin))), px_y(&a, pow(10, fmax(a.xmin, a.ymin))), px_x(&a, 1),
	     px_y(&a, 1), 0, 6, grey);
	for (size_t i = 0; i < r->n_det; i++) {
		int x = px_x(&a, r->det[i].fmr), y = px_y(&a, r->det[i].fnmr);

		if (px >= 0)
			line(c, px, py, x, y, 1, 0, blue);
		px = x;
		py = y;
	}
	snprintf(buf, sizeof(buf), "EER %.2f%% T %.3f", 100 * r->eer, r->eer_threshold);
	mark(c, &a, r->eer, r->eer, buf, red);
	for (int t = 0; t < MATCH_EVAL_N_FMR; t++) {
		const struct match_eval_point *pt = &r->at_fmr[t];

		if (!pt->supported)
			continue;
		snprintf(buf, sizeof(buf), "T %.3f: FNMR %.2f%%", pt->threshold, 100 * pt->miss_rate);
		mark(c, &a, pt->target, pt->miss_rate, buf, black);
	}
}

int eval_det_png(const struct match_eval_report *r, const struct eval_set *s, const char *path)
{
	struct canvas c = { malloc((size_t)W * H * 3) };
	png_image png = { .version = PNG_IMAGE_VERSION, .width = W, .height = H, .format = PNG_FORMAT_RGB };
	FILE *f;
	int fd, bad;

	if (!c.px) {
		fprintf(stderr, "vigilctl eval: out of memory\n");
		return 1;
	}
	draw(&c, r, s);
	fd = vigilctl_out_open(path);
	f = fd >= 0 ? fdopen(fd, "wb") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		free(c.px);
		return 1;
	}
	bad = !png_image_write_to_stdio(&png, f, 0, c.px, 0, NULL);
	bad |= fclose(f) != 0;
	if (bad)
		fprintf(stderr, "vigilctl eval: --det-png %s: writing failed%s%s\n", path, png.message[0] ? ": " : "",
			png.message);
	free(c.px);
	return bad;
}
