/*
 * mgmt deployments, invariant 2: a deployment is matched only when a different person with the
 * authoriser role authorised it, it was started, and now is inside its window; when the window
 * closes it ends and its watchlists are purged, first. Every step, refusals included, is audited
 * and the chain verifies.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "vg_test.h"
#include "mgmt.h"
#include "test_mgmt_common.h"

static const struct mgmt_actor alice = { "sgt.alice", 2001, MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER };
static const struct mgmt_actor bob = { "pc.bob", 2002, MGMT_ROLE_OPERATOR };
static const struct mgmt_actor carol = { "supt.carol", 2003, MGMT_ROLE_AUTHORISER };
static const struct mgmt_actor dave = { "auditor.dave", 2004, MGMT_ROLE_AUDITOR };

static char seal_11[65]; /* watchlist 11's seal, as registered */

/* The daemon, as alerts are raised by it. */
static const struct mgmt_actor vigild = { "vigild", 0, 0 };

struct purged {
	int n;
	char ids[8][65];
	int fail;
};

static int purge(void *arg, int64_t deployment, const char *watchlist)
{
	struct purged *p = arg;

	(void)deployment;
	if (p->fail)
		return -EIO;
	if (p->n < 8)
		snprintf(p->ids[p->n++], sizeof(p->ids[0]), "%s", watchlist);
	return 0;
}

/* Bad requests refused; the good one recorded as requested, not yet matching. Returns its id. */
static int64_t create_deployment(struct mgmt_db *db, const struct mgmt_deployment_request *req)
{
	struct mgmt_deployment d;
	char err[256];
	int64_t id = 0;

	/* Bad requests. */
	struct mgmt_deployment_request bad = *req;
	bad.end_s = bad.start_s;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	bad = *req;
	bad.n_watchlists = 0;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	bad = *req;
	bad.justification = "";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(mgmt_deployment_create(db, &dave, req, &id, err, sizeof(err)), -EPERM);

	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, req, &id, err, sizeof(err)), 0);
	CHECK(id > 0);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_REQUESTED);
	CHECK(strcmp(d.requested_by, "sgt.alice") == 0);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->start_s + 10), 0);
	return id;
}

/* Authorised only by a different person with the role, once. */
static void authorise_deployment(struct mgmt_db *db, const struct mgmt_deployment_request *req, int64_t id)
{
	struct mgmt_deployment d;
	char err[256];

	/* Not startable before authorisation. */
	CHECK_EQ_INT(mgmt_deployment_start(db, &alice, id, req->start_s + 10, err, sizeof(err)), -EPERM);
	/* The requester cannot authorise it, even holding the role; nor can a non-authoriser. */
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &alice, id, true, "looks fine", err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "cannot also authorise") != NULL);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &bob, id, true, "looks fine", err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id, true, "", err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_REQUESTED);

	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id, true, "Necessary and proportionate: see form 7", err,
					       sizeof(err)),
		     0);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id, true, "again", err, sizeof(err)), -EALREADY);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_AUTHORISED);
	CHECK(strcmp(d.authorised_by, "supt.carol") == 0);
}

/* Authorised but not started: no matching. Outside the window: cannot start. */
static void start_deployment(struct mgmt_db *db, const struct mgmt_deployment_request *req, int64_t id)
{
	char err[256];

	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->start_s + 10), 0);
	CHECK_EQ_INT(mgmt_deployment_start(db, &bob, id, req->start_s - 1, err, sizeof(err)), -ETIME);
	CHECK_EQ_INT(mgmt_deployment_start(db, &dave, id, req->start_s + 10, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_deployment_start(db, &bob, id, req->start_s + 10, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->start_s + 10), 1);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->start_s - 1), 0);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->end_s), 0); /* the window is [start, end) */
}

/* Alerts: raised only while the deployment is active; each waits for a person's decision. */
static void alerts_reviewed(struct mgmt_db *db, int64_t id, struct mgmt_alert *al)
{
	char err[256];

	*al = (struct mgmt_alert){ .deployment = id, .camera = "cam1", .pts = 90000, .track = 7, .subject = "S-0042",
				   .watchlist = "11", .metric = "l2", .value = 0.31, .threshold = 0.5,
				   .box = { 10, 20, 40, 50 }, .evidence = "store:deployment/1/segment/0@64#1" };
	snprintf(al->watchlist_seal, sizeof(al->watchlist_seal), "%s", seal_11);
	CHECK_EQ_INT(mgmt_alert_raise(db, &vigild, al), 0);
	CHECK(al->id > 0);
	struct mgmt_alert al2 = *al;
	al2.evidence[0] = '\0'; /* evidence could not be saved: the alert is still raised */
	CHECK_EQ_INT(mgmt_alert_raise(db, &vigild, &al2), 0);
	CHECK_EQ_INT(mgmt_deployment_add_scanned(db, id, 1234), 0);
	/* A better crop of the same track may replace the evidence only until a person has looked. */
	CHECK_EQ_INT(mgmt_alert_set_evidence(db, &vigild, al->id, "store:deployment/1/segment/0@4096+900#5"), 0);
	CHECK_EQ_INT(mgmt_alert_set_evidence(db, &vigild, 999, "x"), -ENOENT);
	CHECK_EQ_INT(mgmt_alert_review(db, &carol, al->id, true, "it is her", err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_alert_review(db, &bob, al->id, true, "", err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(mgmt_alert_review(db, &bob, al->id, true, "Confirmed against custody image", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_alert_review(db, &bob, al->id, false, "changed my mind", err, sizeof(err)), -EALREADY);
	CHECK_EQ_INT(mgmt_alert_review(db, &bob, al2.id, false, "Not the same person", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_alert_review(db, &bob, 999, false, "x", err, sizeof(err)), -ENOENT);
	CHECK_EQ_INT(mgmt_alert_set_evidence(db, &vigild, al->id, "store:deployment/1/segment/0@8192+900#6"), -EALREADY);
	struct mgmt_alert got;
	CHECK_EQ_INT(mgmt_alert_get(db, al->id, &got), 0);
	CHECK(strcmp(got.evidence, "store:deployment/1/segment/0@4096+900#5") == 0);
	CHECK(got.outcome == MGMT_ALERT_CONFIRMED && strcmp(got.reviewed_by, "pc.bob") == 0 &&
	      strcmp(got.subject, "S-0042") == 0 && got.box[3] == 50);
	struct mgmt_transparency tr;
	CHECK_EQ_INT(mgmt_deployment_transparency(db, id, &tr), 0);
	CHECK(tr.faces_scanned == 1234 && tr.alerts == 2 && tr.confirmed == 1 && tr.rejected == 1 && tr.unreviewed == 0);
	CHECK_EQ_INT(mgmt_deployment_transparency(db, 999, &tr), -ENOENT);
}

/* The window's end expires it, its watchlists purged first; no alerts after. */
static void expire_purges(struct mgmt_db *db, const struct mgmt_deployment_request *req, int64_t id,
			  struct purged *p, struct mgmt_alert *al)
{
	struct mgmt_deployment d;

	/* Nothing expires before the end. */
	CHECK_EQ_INT(mgmt_deployment_expire(db, req->end_s - 1, purge, p), 0);
	CHECK_EQ_INT(p->n, 0);

	/* A purge that fails leaves it active, to be retried: never "ended" with a list loaded. */
	p->fail = 1;
	CHECK_EQ_INT(mgmt_deployment_expire(db, req->end_s, purge, p), -EIO);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_ACTIVE);
	p->fail = 0;
	CHECK_EQ_INT(mgmt_deployment_expire(db, req->end_s, purge, p), 1);
	CHECK_EQ_INT(p->n, 2);
	CHECK((strcmp(p->ids[0], "12") == 0 && strcmp(p->ids[1], "11") == 0) ||
	      (strcmp(p->ids[1], "12") == 0 && strcmp(p->ids[0], "11") == 0));
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_ENDED);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id, req->start_s + 10), 0);
	CHECK_EQ_INT(mgmt_deployment_expire(db, req->end_s + 100, purge, p), 0);
	CHECK_EQ_INT(mgmt_alert_raise(db, &vigild, al), -EPERM); /* ended: no more alerts */
}

/* Stopped by hand; refused by the authoriser. */
static void stop_and_refuse(struct mgmt_db *db, const struct mgmt_deployment_request *req, struct purged *p)
{
	struct mgmt_deployment d;
	char err[256];
	int64_t id2 = 0;

	CHECK_EQ_INT(mgmt_deployment_create(db, &bob, req, &id2, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &alice, id2, true, "proportionate", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_start(db, &bob, id2, req->start_s, err, sizeof(err)), 0);
	p->n = 0;
	CHECK_EQ_INT(mgmt_deployment_stop(db, &bob, id2, "crowd dispersed", purge, p, err, sizeof(err)), 0);
	CHECK_EQ_INT(p->n, 2);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, id2, req->start_s + 1), 0);
	CHECK_EQ_INT(mgmt_deployment_stop(db, &bob, id2, "again", purge, p, err, sizeof(err)), -EALREADY);
	int64_t id3;
	CHECK_EQ_INT(mgmt_deployment_create(db, &bob, req, &id3, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id3, false, "watchlist too broad", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_get(db, id3, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_REFUSED);
	CHECK_EQ_INT(mgmt_deployment_start(db, &bob, id3, req->start_s, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_deployment_matching_allowed(db, 999, req->start_s), 0);
}

/*
 * Records a person will read later refuse what they could not show or that makes no sense:
 * absurd times, windows longer than one authorisation may cover, control characters and broken
 * UTF-8, names that are someone else's; the requester may withdraw before the start, no one else.
 */
static void records_refuse_the_absurd(struct mgmt_db *db, const struct mgmt_deployment_request *req)
{
	struct mgmt_deployment_request bad = *req;
	struct mgmt_people *people = NULL;
	struct mgmt_deployment d;
	char err[256];
	int64_t id = 0;

	bad.end_s = INT64_MAX;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -ERANGE);
	bad = *req;
	bad.start_s = INT64_MIN;
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -ERANGE);
	bad.start_s = req->now_s - 3 * 365 * 86400LL; /* years back */
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -ERANGE);
	CHECK(strstr(err, "before it is requested") != NULL);
	bad = *req;
	bad.end_s = req->start_s + 100LL * 366 * 86400; /* a window of a century */
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -ERANGE);
	bad.end_s = req->start_s + 40LL * 86400; /* longer than the default window (31 days) */
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -ERANGE);
	CHECK(strstr(err, "at most 744 hours") != NULL);
	bad.max_window_s = 60LL * 86400; /* a site configured for longer windows */
	bad.name = "Clear\x1b[2J name";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "control character") != NULL);
	bad.name = "Forged\nsgt.alice authorised";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	bad.name = "Broken \xc3\x28 UTF-8";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	bad.name = "C1 \xc2\x9b control";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), -EINVAL);
	bad.name = "Notting Hill — day 2";
	bad.justification = "Two reasons:\n1. sought persons\n2. disorder last year";
	CHECK_EQ_INT(mgmt_deployment_create(db, &alice, &bad, &id, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK(strcmp(d.justification, bad.justification) == 0); /* shown to the authoriser as written */

	/* Withdrawn by its requester only, before it starts; then nothing more happens to it. */
	CHECK_EQ_INT(mgmt_deployment_withdraw(db, &bob, id, "not mine", err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(mgmt_deployment_withdraw(db, &alice, id, "intelligence changed", err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_WITHDRAWN);
	CHECK_EQ_INT(mgmt_deployment_withdraw(db, &alice, id, "again", err, sizeof(err)), -EALREADY);
	CHECK_EQ_INT(mgmt_deployment_authorise(db, &carol, id, true, "late", err, sizeof(err)), -EALREADY);
	CHECK_EQ_INT(mgmt_deployment_start(db, &alice, id, req->start_s, err, sizeof(err)), -EPERM);

	/* One name is one person, in any case, and Vigil's own names are no one's. */
	CHECK_EQ_INT(mgmt_people_parse(&people, "1:sgt.alice:operator,2:SGT.Alice:auditor", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "the name SGT.Alice") != NULL);
	CHECK_EQ_INT(mgmt_people_parse(&people, "1:vigild:admin", err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(mgmt_people_parse(&people, "1:Vigild-run:auditor", err, sizeof(err)), -EINVAL);
	CHECK(people == NULL);
}

int main(void)
{
	static const char *const lists[] = { "11", "12" };
	static char seal_12[65];
	const char *seals[] = { seal_11, seal_12 };
	/* The clock is the test's: requested at 1000000, its window the next 8 hours. */
	struct mgmt_deployment_request req = {
		.name = "Carnival day 1", .use_case = MGMT_USE_SOUGHT_PERSONS, .location = "Ladbroke Grove, W10",
		.start_s = 1000000, .end_s = 1000000 + 8 * 3600, .now_s = 1000000,
		.justification = "Sought persons believed to attend; less intrusive means tried",
		.watchlists = lists, .seals = seals, .n_watchlists = 2,
	};
	struct mgmt_audit_report r;
	struct mgmt_deployment d;
	struct mgmt_alert al;
	struct mgmt_db *db = NULL;
	struct purged p = { 0 };
	char err[256];
	int64_t id;

	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	if (!db)
		return 1;

	/* The deployment names two watchlists vigild holds, by their seals. */
	CHECK_EQ_INT(test_wl_register(db, &alice, 11, 3, seal_11), 0);
	CHECK_EQ_INT(test_wl_register(db, &alice, 12, 2, seal_12), 0);
	id = create_deployment(db, &req);
	authorise_deployment(db, &req, id);
	start_deployment(db, &req, id);
	alerts_reviewed(db, id, &al);
	expire_purges(db, &req, id, &p, &al);
	stop_and_refuse(db, &req, &p);
	records_refuse_the_absurd(db, &req);

	/* Every change and every refused attempt is in the chain, and the chain is intact. */
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	/* 2 watchlists added; create, 2 refused authorisations, authorise, start, 2 alerts raised, a
	 * better crop, 2 reviewed, expire; create, authorise, start, stop; create, refuse; create,
	 * withdraw */
	CHECK_EQ_INT(r.entries, 21);
	mgmt_db_close(&db);

	/* State kept across a restart. */
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_deployment_get(db, id, &d), 0);
	CHECK_EQ_INT(d.state, MGMT_DEPLOYMENT_ENDED);
	CHECK(strcmp(d.location, "Ladbroke Grove, W10") == 0);
	mgmt_db_close(&db);
	test_db_cleanup();
	return vg_test_exit();
}
