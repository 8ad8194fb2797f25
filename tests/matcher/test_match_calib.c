/*
 * A model's calibration (match_calib.h) on scores whose answers are known by hand: 10,000
 * impostor scores 0.0000, 0.0001, ..., 0.9999, a tail kept below 0.5. FMR with Wilson's interval,
 * the rule-of-three bound where no impostor is within the threshold, the lower bound beyond the
 * tail, FPIR at a watchlist size, the threshold for a target FPIR (and the plain "cannot" where the
 * pairs cannot show it), and the file: round trip, seal, the model binding, and tampered copies.
 */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match_calib.h"
#include "vg_test.h"

#define PAIRS 10000
#define DIGEST "2f4a44b0442c0b8f7b9bc2b849a4a2850cdd8dac99b20f29a659044d25813404"

static int near(double a, double b, double tol)
{
	return fabs(a - b) <= tol;
}

static void build(struct match_calib *c)
{
	static double scores[PAIRS];

	/* shuffled order: the build sorts */
	for (int i = 0; i < PAIRS; i++)
		scores[i] = (double)((i * 7919) % PAIRS) / PAIRS;
	CHECK_EQ_INT(match_calib_build(c, "face-api-1.7.15", DIGEST, 0, "synthetic", scores, PAIRS, 40, 0.5), 0);
	CHECK(c->n_tail == PAIRS / 2);
}

static void test_rates(const struct match_calib *c)
{
	/* 1,000 of 10,000 below 0.1: Wilson's 95% interval for 0.1 at n = 10,000 is [0.09427, 0.10604] */
	struct match_calib_estimate e = match_calib_fmr(c, 0.1);
	CHECK(e.bound == 0 && near(e.value, 0.1, 1e-12));
	CHECK(near(e.low, 0.09427, 5e-5) && near(e.high, 0.10604, 5e-5));
	/* no impostor below 0: only an upper bound, 1 - 0.05^(1/10000) = 2.9952e-4 */
	e = match_calib_fmr(c, 0.0);
	CHECK(e.bound == -1 && near(e.high, 2.9952e-4, 1e-7) && e.low == 0 && e.value == e.high);
	/* beyond the tail (0.5): at least half */
	e = match_calib_fmr(c, 0.7);
	CHECK(e.bound == 1 && e.low > 0.49 && e.low < 0.5 && e.high == 1);
	/* FPIR for 10 people at FMR 0.1: 1 - 0.9^10 */
	e = match_calib_fpir(c, 0.1, 10);
	CHECK(near(e.value, 1 - pow(0.9, 10), 1e-12) && e.low < e.value && e.high > e.value);
	/* the thresholds a cosine model's similarity maps to */
	CHECK(near(match_calib_score_of_threshold(1, 0.3), 0.7, 1e-15));
	CHECK(near(match_calib_threshold_of_score(0, 0.6), 0.6, 0));
}

static void test_thresholds(const struct match_calib *c)
{
	/* FPIR 1% at 10 people: FMR 1 - 0.99^0.1 = 1.00453e-3, 10 impostors allowed: the 11th score */
	struct match_calib_estimate e = match_calib_threshold(c, 0.01, 10);
	CHECK(e.bound == 0 && near(e.value, 0.0010, 1e-12));
	CHECK(e.low < e.value && e.high > e.value);
	/* the interval's safe end meets the target even at its FMR's upper bound */
	struct match_calib_estimate f = match_calib_fmr(c, e.low);
	CHECK(f.high <= 1 - pow(0.99, 0.1) + 1e-12);
	/* and the threshold reproduces the target FPIR */
	CHECK(match_calib_fpir(c, e.value, 10).value <= 0.01);
	/* 1 false alert in 6,000 faces at 16,000 people needs FMR 1e-8: 10,000 pairs cannot show it */
	e = match_calib_threshold(c, 1.0 / 6000, 16000);
	CHECK(e.bound == -1 && isinf(e.low) && e.value == 0.0);
	/* a generous target beyond the tail: at least the tail's limit */
	e = match_calib_threshold(c, 0.99, 2);
	CHECK(e.bound == 1 && e.value == 0.5);
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);

	*len = f ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	if (f)
		fclose(f);
	buf[*len] = '\0';
	return buf;
}

static void write_all(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");

	CHECK(f && fwrite(text, 1, len, f) == len);
	if (f)
		fclose(f);
}

static int one_line(const char *s)
{
	return s[0] && !strchr(s, '\n');
}

static void test_file(struct match_calib *c)
{
	char dir[512], path[1024], bad[1100], err[512], seal[65];
	struct match_calib back;
	uint8_t d[32];
	size_t len;
	char *text;

	if (!vg_test_tmpdir("calib", dir, sizeof(dir))) {
		CHECK(0);
		return;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, MATCH_CALIB_FILE);
	CHECK_EQ_INT(match_calib_save(c, path, err, sizeof(err)), 0);
	text = read_all(path, &len);
	crypto_hash_sha256(d, (const uint8_t *)text, len);
	sodium_bin2hex(seal, sizeof(seal), d, sizeof(d));
	CHECK_EQ_STR(c->seal, seal);
	/* round trip: the same figures, the same seal */
	CHECK_EQ_INT(match_calib_load(&back, path, DIGEST, err, sizeof(err)), 0);
	CHECK_EQ_STR(back.seal, seal);
	CHECK(back.n_tail == c->n_tail && back.impostor_pairs == PAIRS && back.impostor_people == 40);
	CHECK(memcmp(back.tail, c->tail, c->n_tail * sizeof(double)) == 0);
	CHECK(match_calib_threshold(&back, 0.01, 10).value == match_calib_threshold(c, 0.01, 10).value);
	match_calib_free(&back);
	/* another model's calibration is refused */
	char other[65] = DIGEST;
	other[0] = '0';
	err[0] = '\0';
	CHECK_EQ_INT(match_calib_load(&back, path, other, err, sizeof(err)), -ESTALE);
	CHECK(strstr(err, "another model") && one_line(err));
	/* tampered: a score moved out of order, the pairs shrunk under the tail, truncated, duplicated keys */
	static const struct {
		const char *from, *to;
	} edits[] = {
		{ "\"tail\":[0.0,", "\"tail\":[0.25," },
		{ "\"impostor_pairs\":10000", "\"impostor_pairs\":100" },
		{ "\"format\":", "\"format\":\"x\",\"format\":" },
		{ "\"metric\":\"l2\"", "\"metric\":\"hamming\"" },
	};
	snprintf(bad, sizeof(bad), "%s/bad.json", dir);
	for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *at = strstr(text, edits[i].from), *edited;

		CHECK(at != NULL);
		if (!at)
			continue;
		edited = malloc(len + 64);
		size_t head = (size_t)(at - text);
		memcpy(edited, text, head);
		strcpy(edited + head, edits[i].to);
		strcat(edited, at + strlen(edits[i].from));
		write_all(bad, edited, strlen(edited));
		err[0] = '\0';
		CHECK_EQ_INT(match_calib_load(&back, bad, NULL, err, sizeof(err)), -EBADMSG);
		CHECK(one_line(err) && back.tail == NULL);
		free(edited);
	}
	write_all(bad, text, len / 2);
	CHECK_EQ_INT(match_calib_load(&back, bad, NULL, err, sizeof(err)), -EBADMSG);
	unlink(bad);
	CHECK_EQ_INT(match_calib_load(&back, bad, NULL, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "bad.json") && one_line(err));
	free(text);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	struct match_calib c;

	build(&c);
	test_rates(&c);
	test_thresholds(&c);
	test_file(&c);
	/* bad builds */
	struct match_calib x;
	double nan_score = NAN;
	CHECK_EQ_INT(match_calib_build(&x, "m", DIGEST, 0, "", &nan_score, 1, 2, 1), -EINVAL);
	CHECK_EQ_INT(match_calib_build(&x, "m", DIGEST, 2, "", c.tail, 1, 2, 1), -EINVAL);
	match_calib_free(&c);
	return vg_test_exit();
}
