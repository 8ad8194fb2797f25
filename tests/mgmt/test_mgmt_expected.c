/*
 * The false alerts a deployment is expected to raise, stated before anyone decides (issue 17):
 * computed from the model's calibration and each watchlist's size and threshold, checked here
 * against a count over the raw impostor scores; kept with the request and audited with it and
 * with the authorisation; refused above the policy's limit (and when nothing can be stated under
 * a limit), the refusal audited; a watchlist enrolled with another model refused; the face rate
 * the appliance measured turned into a figure per hour.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "match_calib.h"
#include "mgmt.h"
#include "test_mgmt_common.h"
#include "vg_test.h"

#define PAIRS 1000000
#define DIGEST "2f4a44b0442c0b8f7b9bc2b849a4a2850cdd8dac99b20f29a659044d25813404"

static const struct mgmt_actor alice = { "sgt.alice", 2001, MGMT_ROLE_OPERATOR };
static const struct mgmt_actor carol = { "supt.carol", 2003, MGMT_ROLE_AUTHORISER };

/* Impostor scores 0.29 + i * 1e-6: FMR(t) is the share below t. */
static double *scores;

static double independent_fmr(float threshold)
{
	uint64_t k = 0;

	for (int i = 0; i < PAIRS; i++)
		k += scores[i] < (double)threshold;
	return (double)k / PAIRS;
}

static int add_list(struct mgmt_db *db, const char *model, uint32_t id, float threshold, unsigned n, char seal[65])
{
	struct mgmt_watchlist w;
	char err[256];
	int fd = test_wl_file_of(model, id, threshold, n, false);
	int rc = mgmt_watchlist_add(db, &alice, fd, -1, "list", 0, &w, err, sizeof(err));

	close(fd);
	if (rc == 0)
		memcpy(seal, w.sha256, 65);
	return rc;
}

struct find {
	const char *action;
	char detail[2048];
	int found;
};

static bool find_entry(void *arg, const struct mgmt_audit_entry *e)
{
	struct find *f = arg;

	if (e->action && strcmp(e->action, f->action) == 0) {
		snprintf(f->detail, sizeof(f->detail), "%s", e->detail ? e->detail : "");
		f->found++;
	}
	return true;
}

static struct find audited(struct mgmt_db *db, const char *action)
{
	struct find f = { .action = action };

	mgmt_audit_list(db, 0, 100000, find_entry, &f);
	return f;
}

int main(void)
{
	static const char *const lists[] = { "21", "22" };
	static char seal_21[65], seal_22[65], seal_23[65];
	const char *seals[] = { seal_21, seal_22 };
	int64_t now = (int64_t)time(NULL);
	struct mgmt_deployment_request req = {
		.name = "Stadium", .use_case = MGMT_USE_SOUGHT_PERSONS, .location = "North stand",
		.start_s = now, .end_s = now + 4 * 3600, .now_s = now,
		.justification = "Sought persons", .watchlists = lists, .seals = seals, .n_watchlists = 2,
		.model_id = "face-api-1.7.15",
	};
	struct mgmt_expected e;
	struct match_calib calib;
	struct mgmt_db *db = NULL;
	char err[512], text[700];
	int64_t id, id2;

	scores = malloc(PAIRS * sizeof(double));
	for (int i = 0; i < PAIRS; i++)
		scores[i] = 0.29 + i * 1e-6;
	CHECK_EQ_INT(match_calib_build(&calib, "face-api-1.7.15", DIGEST, 0, "synthetic", scores, PAIRS, 40, 0.3), 0);
	snprintf(calib.seal, sizeof(calib.seal), "%064d", 7);
	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return 1;
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 21, 0.2901f, 100, seal_21), 0);
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 22, 0.29005f, 10, seal_22), 0);

	/* Stated with the request: 1 - (1 - FMR_21)^100 (1 - FMR_22)^10 per face, counted independently. */
	req.calib = &calib;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_expected(db, id, &e), 0);
	double want = 1000 * (1 - pow(1 - independent_fmr(0.2901f), 100) * pow(1 - independent_fmr(0.29005f), 10));
	CHECK(e.stated && e.bound == 0);
	CHECK(fabs(e.per_1000 - want) < 1e-9 * want);
	CHECK(e.low < e.per_1000 && e.per_1000 < e.high);
	CHECK_EQ_STR(e.calibration_seal, calib.seal);
	CHECK(e.faces_per_hour == 0);
	mgmt_expected_text(&e, text, sizeof(text));
	CHECK(strstr(text, "per 1,000 faces") && strstr(text, "no face rate measured"));
	/* audited with the request, and with the authorisation, as the authoriser was shown it */
	char figure[64];
	snprintf(figure, sizeof(figure), "\"per_1000\":%.6g", e.per_1000);
	CHECK(strstr(audited(db, "deployment.create").detail, figure));
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id, true, "proportionate", err, sizeof(err)), 0);
	struct find auth = audited(db, "deployment.authorise");
	CHECK(strstr(auth.detail, figure) && strstr(auth.detail, calib.seal));

	/* The policy: a limit under the interval's upper end refuses, on the record; over it passes.
	 * (Watchlists 21 and 22 belong to deployment ID now: two more, alike, for the next request.) */
	static const char *const lists2[] = { "24", "25" };
	static char seal_24[65], seal_25[65];
	const char *seals2[] = { seal_24, seal_25 };
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 24, 0.2901f, 100, seal_24), 0);
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 25, 0.29005f, 10, seal_25), 0);
	req.watchlists = lists2;
	req.seals = seals2;
	req.name = "Stadium, day 2";
	req.max_expected_per_1000 = e.per_1000;
	err[0] = '\0';
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), -EDOM);
	CHECK(strstr(err, "limit") && !strchr(err, '\n'));
	struct find refused = audited(db, "deployment.create.refused");
	CHECK(refused.found == 1 && strstr(refused.detail, figure));
	/* the refused request bound nothing: the same watchlists pass under a limit over the interval */
	req.max_expected_per_1000 = e.high * 1.01;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), 0);

	/* Nothing can be stated without a calibration: shown as such, and refused under a limit. */
	req.calib = NULL;
	req.max_expected_per_1000 = 5;
	req.watchlists = (const char *const[]){ "26" };
	static char seal_26[65];
	req.seals = (const char *const[]){ seal_26 };
	req.n_watchlists = 1;
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 26, 0.5f, 3, seal_26), 0);
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), -EDOM);
	CHECK(strstr(err, "no calibration"));
	req.max_expected_per_1000 = 0;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_expected(db, id2, &e), 0);
	mgmt_expected_text(&e, text, sizeof(text));
	CHECK(!e.stated && strstr(text, "not stated"));

	/* A watchlist enrolled with another model cannot be deployed on this one. */
	CHECK_EQ_INT(add_list(db, "face-api:0123456789abcdef", 23, 0.5f, 3, seal_23), 0);
	req.watchlists = (const char *const[]){ "23" };
	req.seals = (const char *const[]){ seal_23 };
	err[0] = '\0';
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), -EMEDIUMTYPE);
	CHECK(strstr(err, "face-api:0123456789abcdef") && strstr(err, "face-api-1.7.15"));
	/* and a model id that would carry a terminal escape into the records is refused at the door */
	CHECK_EQ_INT(add_list(db, "face\x1b[31m", 27, 0.5f, 3, seal_23), -EINVAL);

	/* The measured face rate: 600 faces scanned this hour make a figure per hour. */
	CHECK_EQ_INT(mgmt_deployment_start(db, &alice, id, now + 1, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_add_scanned(db, id, 600), 0);
	CHECK(fabs(mgmt_measured_faces_per_hour(db, now) - 600) < 1e-9);
	req.calib = &calib;
	req.watchlists = (const char *const[]){ "28" };
	static char seal_28[65];
	req.seals = (const char *const[]){ seal_28 };
	CHECK_EQ_INT(add_list(db, "face-api-1.7.15", 28, 0.2901f, 100, seal_28), 0);
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &req, &id2, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_expected(db, id2, &e), 0);
	CHECK(e.faces_per_hour == 600);
	mgmt_expected_text(&e, text, sizeof(text));
	CHECK(strstr(text, "an hour at the 600 faces an hour measured"));

	struct mgmt_audit_report r;
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	match_calib_free(&calib);
	mgmt_db_close(&db);
	free(scores);
	return vg_test_exit();
}
