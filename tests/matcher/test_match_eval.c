/*
 * match_eval on small synthetic sets whose answers are worked out by hand in the comments: 1-D
 * descriptors, so every L2 score is the distance between two numbers on a line (and exact in
 * double). EER, FNMR at FMR and its threshold rule, Wilson bounds, the unsupported statements,
 * open-set identification (rank-1, FPIR/FNIR at a threshold and FNIR at FPIR), the split,
 * template fusion, the bootstrap's determinism and bad input.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "match_eval.h"
#include "vg_test.h"

#define NEAR(a, b, tol) (fabs((a) - (b)) <= (tol))

/*
 * Set A, three people, two images each, on a line: p0 {0, 2}, p1 {3, 4}, p2 {10, 10.5}.
 * genuine: 2, 1, 0.5; impostor (12): 1 2 3 4 6 6.5 7 7.5 8 8.5 10 10.5.
 * EER walk: T=0.5: FMR 0, FNMR 2/3; T=1: 1/12, 1/3; T=2: 2/12, 0 (|d| = 1/6, the least);
 * T=3: 3/12, 0. EER = (1/6 + 0) / 2 = 1/12 at T = 2.
 */
static const float set_a[] = { 0, 2, 3, 4, 10, 10.5f };
static const unsigned set_a_people[] = { 0, 0, 1, 1, 2, 2 };

static struct match_eval_conf conf_a(void)
{
	return (struct match_eval_conf){
		.set = { set_a, set_a_people, 6, 3, 1, MATCH_EVAL_L2 },
		.threshold = 0.6,
	};
}

static void test_verification(void)
{
	struct match_eval_conf c = conf_a();
	struct match_eval_report r;

	CHECK_EQ_INT(match_eval_run(&c, &r), 0);
	CHECK_EQ_INT(r.n_genuine, 3);
	CHECK_EQ_INT(r.n_impostor, 12);
	CHECK(r.genuine[0] == 0.5 && r.genuine[2] == 2);
	CHECK(r.impostor[0] == 1 && r.impostor[11] == 10.5);
	CHECK(NEAR(r.eer, 1.0 / 12, 1e-12));
	CHECK(r.eer_threshold == 2);
	/* At 0.6: no impostor, and genuine 1 and 2 are above: FNMR 2/3. */
	CHECK(r.fmr == 0);
	CHECK(NEAR(r.fnmr, 2.0 / 3, 1e-12));
	/* DET: -inf plus one point per distinct score (0.5 1 2 3 4 6 6.5 7 7.5 8 8.5 10 10.5). */
	CHECK_EQ_INT(r.n_det, 14);
	CHECK(r.det[0].fmr == 0 && r.det[0].fnmr == 1);
	CHECK(r.det[3].threshold == 2 && NEAR(r.det[3].fmr, 2.0 / 12, 1e-12) && r.det[3].fnmr == 0);
	CHECK(r.det[13].fmr == 1);
	/* 12 impostor pairs support no FMR down to 1e-2 (needs 300). */
	for (int t = 0; t < MATCH_EVAL_N_FMR; t++) {
		CHECK(!r.at_fmr[t].supported);
		CHECK(isnan(r.at_fmr[t].threshold) && isnan(r.at_fmr[t].miss_rate));
		CHECK(strstr(r.at_fmr[t].statement, "cannot be measured on 12 impostor pairs"));
	}
	CHECK(strstr(r.at_fmr[0].statement, "needs at least 300"));
	CHECK(strstr(r.at_fmr[2].statement, "needs at least 30000"));
	match_eval_report_free(&r);
	CHECK(r.genuine == NULL && r.n_det == 0);
}

/*
 * Twenty people on a line, 100 apart, two images each at 100p and 100p + 1, except p0's second
 * at -150 (genuine 150). 760 impostor pairs; the least are 99 (100p + 1 vs 100(p + 1), p = 1..18:
 * 18 of them). FMR 1e-2 allows 7.6 of 760: the 18 tied at 99 cannot all be accepted, so none is:
 * threshold just under 99, FMR 0, FNMR 1/20 (p0's 150). Wilson(1, 20) = [0.00889, 0.23613].
 * FMR 1e-3 would need 3,000 pairs: unsupported.
 */
static void line20(float *desc, unsigned *people)
{
	for (unsigned p = 0; p < 20; p++) {
		desc[2 * p] = 100.0f * p;
		desc[2 * p + 1] = p ? 100.0f * p + 1 : -150;
		people[2 * p] = people[2 * p + 1] = p;
	}
}

static void test_fnmr_at_fmr(void)
{
	float desc[40];
	unsigned people[40];
	struct match_eval_conf c = { .set = { desc, people, 40, 20, 1, MATCH_EVAL_L2 }, .threshold = 0.6,
				     .bootstrap_rounds = 200, .seed = 7 };
	struct match_eval_report r, r2;

	line20(desc, people);
	CHECK_EQ_INT(match_eval_run(&c, &r), 0);
	CHECK_EQ_INT(r.n_impostor, 760);
	CHECK(r.at_fmr[0].supported);
	CHECK(r.at_fmr[0].threshold == nextafter(99, -INFINITY));
	CHECK(r.at_fmr[0].false_rate == 0);
	CHECK(NEAR(r.at_fmr[0].miss_rate, 0.05, 1e-12));
	CHECK(NEAR(r.at_fmr[0].miss_wilson.lo, 0.00889, 1e-5));
	CHECK(NEAR(r.at_fmr[0].miss_wilson.hi, 0.23613, 1e-5));
	CHECK(strstr(r.at_fmr[0].statement, "observable on 760 impostor pairs"));
	CHECK(!r.at_fmr[1].supported && !r.at_fmr[2].supported);
	CHECK(strstr(r.at_fmr[1].statement, "needs at least 3000"));
	/* The bootstrap: the same seed gives the same intervals; they hold the point estimates. */
	CHECK(r.eer_boot.lo <= r.eer && r.eer <= r.eer_boot.hi);
	CHECK(r.at_fmr[0].miss_boot.lo <= 0.05 && 0.05 <= r.at_fmr[0].miss_boot.hi);
	CHECK(isnan(r.at_fmr[1].miss_boot.lo));
	CHECK_EQ_INT(match_eval_run(&c, &r2), 0);
	CHECK(r.eer_boot.lo == r2.eer_boot.lo && r.eer_boot.hi == r2.eer_boot.hi);
	CHECK(r.at_fmr[0].miss_boot.hi == r2.at_fmr[0].miss_boot.hi);
	match_eval_report_free(&r);
	match_eval_report_free(&r2);
	/* The threshold's people bootstrap: in each round the least impostor group (99, or 100 when
	 * no drawn neighbours pair at 99) is either all in or all out, so every round's threshold lies
	 * between just under 99 and 100.5 (the midpoint after the 100s); the same seed, the same interval. */
	{
		struct match_eval_ci a, b;

		CHECK_EQ_INT(match_eval_threshold_boot(&c, 1e-2, &a), 0);
		CHECK_EQ_INT(match_eval_threshold_boot(&c, 1e-2, &b), 0);
		CHECK(a.lo == b.lo && a.hi == b.hi);
		CHECK(a.lo >= nextafter(99, -INFINITY) && a.lo <= a.hi && a.hi <= 100.5);
		c.bootstrap_rounds = 0;
		CHECK_EQ_INT(match_eval_threshold_boot(&c, 1e-2, &a), -EINVAL);
	}
}

/*
 * The threshold rule on 12 sorted negatives with a tie: 1 2 2 3 4 5 6 7 8 9 10 11.
 * 0.25 allows 3: 1, 2, 2 accepted, 3 refused: midpoint 2.5; supported (0.25 x 12 = 3).
 * 0.15 allows 1.8: the pair tied at 2 cannot both go in: 1 accepted, threshold 1.5; unsupported.
 * 0.05 allows 0.6: none; just under 1.
 */
static void test_threshold_rule(void)
{
	static const double neg[] = { 1, 2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
	bool sup;

	CHECK(match_eval_threshold_at(neg, 12, 0.25, &sup) == 2.5);
	CHECK(sup);
	CHECK(match_eval_threshold_at(neg, 12, 0.15, &sup) == 1.5);
	CHECK(!sup);
	CHECK(match_eval_threshold_at(neg, 12, 0.05, &sup) == nextafter(1, -INFINITY));
	CHECK(isinf(match_eval_threshold_at(neg, 12, 1.0, &sup)));
	CHECK(isnan(match_eval_threshold_at(neg, 0, 0.1, &sup)));
}

static void test_wilson(void)
{
	struct match_eval_ci ci = match_eval_wilson(0, 100);

	/* 0 of 100: [0, z^2 / (n + z^2)] = [0, 0.03699]. */
	CHECK(NEAR(ci.lo, 0, 1e-12) && NEAR(ci.hi, 3.8414588 / 103.8414588, 1e-7));
	ci = match_eval_wilson(50, 100); /* symmetric about 0.5: [0.40383, 0.59617] */
	CHECK(NEAR(ci.lo, 0.40383, 1e-5) && NEAR(ci.hi, 0.59617, 1e-5));
	ci = match_eval_wilson(0, 0);
	CHECK(isnan(ci.lo) && isnan(ci.hi));
}

/*
 * Set A as a 1:N gallery {0: p0, 3: p1, 10: p2}. Mated searches: 2 -> scores 2, 1, 8: top p1,
 * wrong; 4 -> 4, 1, 6: p1 at 1, right; 10.5 -> p2 at 0.5, right. rank-1 2/3. At 0.6 only p2's
 * search is a hit: FNIR 2/3. Non-mated: 45 passers-by at 11.5, 12.5, ...: top scores 1.5, 2.5,
 * ... (p2). FPIR 1e-1 allows 4.5: 1.5..4.5 accepted, 5.5 refused: threshold 5, FPIR 4/45; there
 * the p0 search is still wrong: FNIR 1/3. FPIR 1e-2 would need 300 non-mated searches.
 */
static void test_identification(void)
{
	float nm[45];
	struct match_eval_conf c = conf_a();
	struct match_eval_report r;

	for (int i = 0; i < 45; i++)
		nm[i] = 11.5f + (float)i;
	c.nonmated = nm;
	c.n_nonmated = 45;
	CHECK_EQ_INT(match_eval_run(&c, &r), 0);
	CHECK_EQ_INT(r.ident.n_enrolled, 3);
	CHECK_EQ_INT(r.ident.n_mated, 3);
	CHECK_EQ_INT(r.ident.n_nonmated, 45);
	CHECK(NEAR(r.ident.rank1, 2.0 / 3, 1e-12));
	CHECK(NEAR(r.ident.fnir, 2.0 / 3, 1e-12));
	CHECK(r.ident.fpir == 0);
	CHECK(r.ident.nonmated_top[0] == 1.5 && r.ident.nonmated_top[44] == 45.5);
	CHECK(r.ident.at_fpir[0].supported);
	CHECK(r.ident.at_fpir[0].threshold == 5);
	CHECK(NEAR(r.ident.at_fpir[0].false_rate, 4.0 / 45, 1e-12));
	CHECK(NEAR(r.ident.at_fpir[0].miss_rate, 1.0 / 3, 1e-12));
	CHECK(!r.ident.at_fpir[1].supported);
	CHECK(strstr(r.ident.at_fpir[1].statement, "cannot be measured on 45 non-mated searches"));
	match_eval_report_free(&r);
}

/*
 * The split: p0 and p1 enrolled {0, 3}, p2 a passer-by. Mated: 2 -> p1 at 1 (wrong), 4 -> p1 at 1.
 * Non-mated: p2's 10 -> 7 and 10.5 -> 7.5, and the separate set {20, 6.5, -1} -> 17, 3.5, 1.
 * At T = 3.5: FPIR 2/5 (1 and 3.5); FNIR 1/2.
 */
static void test_split(void)
{
	static const float nm[] = { 20, 6.5f, -1 };
	static const unsigned char enrolled[] = { 1, 1, 0 };
	struct match_eval_conf c = conf_a();
	struct match_eval_report r;

	c.nonmated = nm;
	c.n_nonmated = 3;
	c.enrolled = enrolled;
	c.threshold = 3.5;
	CHECK_EQ_INT(match_eval_run(&c, &r), 0);
	CHECK_EQ_INT(r.ident.n_enrolled, 2);
	CHECK_EQ_INT(r.ident.n_mated, 2);
	CHECK_EQ_INT(r.ident.n_nonmated, 5);
	CHECK(r.ident.nonmated_top[0] == 1 && r.ident.nonmated_top[1] == 3.5 && r.ident.nonmated_top[2] == 7 &&
	      r.ident.nonmated_top[3] == 7.5 && r.ident.nonmated_top[4] == 17);
	CHECK(r.ident.rank1 == 0.5);
	CHECK(r.ident.fpir == 0.4);
	CHECK(r.ident.fnir == 0.5);
	match_eval_report_free(&r);
}

static void test_fuse(void)
{
	const float a[] = { 1, 2 }, b[] = { 3, 4 }, x[] = { 1, 0 }, y[] = { 0, 1 }, z[] = { -1, 0 };
	const float *ab[] = { a, b }, *xy[] = { x, y }, *xz[] = { x, z };
	float out[2];

	CHECK_EQ_INT(match_eval_fuse(ab, 2, 2, MATCH_EVAL_L2, out), 0);
	CHECK(out[0] == 2 && out[1] == 3);
	CHECK_EQ_INT(match_eval_fuse(xy, 2, 2, MATCH_EVAL_COSINE, out), 0);
	CHECK(NEAR(out[0], sqrt(0.5), 1e-7) && NEAR(out[1], sqrt(0.5), 1e-7));
	CHECK_EQ_INT(match_eval_fuse(xz, 2, 2, MATCH_EVAL_COSINE, out), -EINVAL);
	CHECK_EQ_INT(match_eval_fuse(ab, 0, 2, MATCH_EVAL_L2, out), -EINVAL);
	CHECK(NEAR(match_eval_score(x, y, 2, MATCH_EVAL_COSINE), 1, 1e-12));
	CHECK(match_eval_score(a, b, 2, MATCH_EVAL_L2) == sqrt(8));
}

/*
 * Fusion, k = 2: twenty people 1000 apart, five images each: the enrolment at 1000p and probes
 * at 1000p + {o, -o, o, -o}, o = 600 for even p, 3 for odd p. Fused pairs (o, -o) average to
 * 1000p: score 0. Single: 80 genuine (40 at 600, 40 at 3), 1520 impostor pairs, the least 400
 * (even p's +600 vs p + 1: 20; -600 vs p - 1: 18); 15.2 allowed at FMR 1e-2, so the threshold
 * is just under 400 and every 600 misses: FNMR 1/2. Fused: 40 probes, 760 impostor pairs, all
 * at 1000 or more: threshold just under 1000, FNMR 0. FMR 1e-3 is unsupported both ways.
 */
static void test_fusion(void)
{
	float desc[100];
	unsigned people[100];
	struct match_eval_conf c = { .set = { desc, people, 100, 20, 1, MATCH_EVAL_L2 }, .threshold = 0.6,
				     .fuse_k = 2 };
	struct match_eval_report r;

	for (unsigned p = 0; p < 20; p++) {
		float o = p % 2 ? 3 : 600;
		const float off[5] = { 0, o, -o, o, -o };

		for (int i = 0; i < 5; i++) {
			desc[5 * p + i] = 1000.0f * p + off[i];
			people[5 * p + i] = p;
		}
	}
	CHECK_EQ_INT(match_eval_run(&c, &r), 0);
	CHECK_EQ_INT(r.fusion.k, 2);
	CHECK_EQ_INT(r.fusion.n_people, 20);
	CHECK_EQ_INT(r.fusion.n_single, 80);
	CHECK_EQ_INT(r.fusion.n_fused, 40);
	CHECK_EQ_INT(r.fusion.single[0].negatives, 1520);
	CHECK_EQ_INT(r.fusion.fused[0].negatives, 760);
	CHECK(r.fusion.single[0].supported && r.fusion.fused[0].supported);
	CHECK(r.fusion.single[0].threshold == nextafter(400, -INFINITY));
	CHECK(r.fusion.single[0].miss_rate == 0.5);
	CHECK(r.fusion.fused[0].threshold == nextafter(1000, -INFINITY));
	CHECK(r.fusion.fused[0].miss_rate == 0);
	CHECK(!r.fusion.single[1].supported && !r.fusion.fused[1].supported);
	match_eval_report_free(&r);
}

static void test_bad_input(void)
{
	struct match_eval_conf c = conf_a();
	struct match_eval_report r = { 0 };
	static const unsigned one_person[] = { 0, 0, 0, 0, 0, 0 }, out_of_range[] = { 0, 0, 1, 1, 2, 3 };
	static const unsigned char none[] = { 0, 0, 0 };
	const float nan_set[] = { 0, NAN, 3, 4, 10, 10.5f };

	c.set.n_people = 1;
	c.set.person = one_person;
	CHECK_EQ_INT(match_eval_run(&c, &r), -EINVAL);
	c = conf_a();
	c.set.person = out_of_range;
	CHECK_EQ_INT(match_eval_run(&c, &r), -EINVAL);
	c = conf_a();
	c.set.n_people = 4; /* person 3 has no image */
	CHECK_EQ_INT(match_eval_run(&c, &r), -EINVAL);
	c = conf_a();
	c.enrolled = none;
	CHECK_EQ_INT(match_eval_run(&c, &r), -EINVAL);
	c = conf_a();
	c.set.desc = nan_set;
	CHECK_EQ_INT(match_eval_run(&c, &r), -EINVAL);
	CHECK(r.genuine == NULL); /* untouched */
}

int main(void)
{
	test_verification();
	test_fnmr_at_fmr();
	test_threshold_rule();
	test_wilson();
	test_identification();
	test_split();
	test_fuse();
	test_fusion();
	test_bad_input();
	return vg_test_exit();
}
