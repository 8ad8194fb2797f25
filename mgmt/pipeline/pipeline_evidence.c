/*
 * Review outcomes into the evidence store (vigil_outcome.h): confirmed and rejected evidence is
 * kept for different periods, so the store must learn each decision before the unreviewed
 * period (24 h by default) runs out.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "vg_base.h"
#include "vg_log.h"
#include "vg_pool.h"
#include "pipeline_evidence.h"

#define OUTCOMES_PER_PASS 256 /* a pass is bounded; the next review or tick takes the rest */

int pipeline_evidence_locator_parse(const char *s, struct store_handle *h)
{
	unsigned long long d, off, seq;
	unsigned seg, len;

	if (sscanf(s, "store:deployment/%llu/segment/%u@%llu+%u#%llu", &d, &seg, &off, &len, &seq) != 5)
		return -EINVAL;
	*h = (struct store_handle){ .deployment = d, .seq = seq, .segment = seg, .len = len, .offset = off, .saved = true };
	return 0;
}

int pipeline_outcomes_apply(struct mgmt_db *db, struct store *st)
{
	struct mgmt_alert_outcome_todo todo[OUTCOMES_PER_PASS];
	int n = mgmt_alert_outcome_pending(db, todo, OUTCOMES_PER_PASS), applied = 0;

	for (int i = 0; i < n; i++) {
		struct store_handle h;
		int rc = 0;

		if (todo[i].evidence[0] && pipeline_evidence_locator_parse(todo[i].evidence, &h) == 0) {
			if (st && (rc = store_deployment_open(st, h.deployment)) == 0)
				rc = store_outcome_set(st, &h, todo[i].outcome == MGMT_ALERT_CONFIRMED ? STORE_OUTCOME_CONFIRMED
												   : STORE_OUTCOME_REJECTED);
			else if (!st)
				continue; /* needs the store: left pending */
		}
		/* -ENOENT: the record is gone (retention or a shred): nothing left to keep longer or shorter. */
		if (rc < 0 && rc != -ENOENT) {
			VG_LOG(MGMT, WARN, "alert %" PRId64 ": store outcome not applied: %s", todo[i].alert, vg_strerror(rc));
			continue;
		}
		if (mgmt_alert_outcome_applied(db, todo[i].alert) == 0)
			applied++;
	}
	return n < 0 ? n : applied;
}

int pipeline_store_open(struct mgmt_db *db, const char *state_dir, struct store **out, char *err, size_t errlen)
{
	char dir[600], key[600];
	struct mgmt_retention r;

	snprintf(dir, sizeof(dir), "%s/evidence", state_dir);
	snprintf(key, sizeof(key), "%s/appliance.key", state_dir);
	struct store_conf sc = { .dir = dir, .appliance_key_path = key };
	/* The periods set with `vigilctl retention set`, as any opener of the store must use. */
	if (mgmt_retention_get(db, &r) == 0) {
		sc.retain_confirmed_s = r.confirmed_s;
		sc.retain_rejected_s = r.rejected_s;
		sc.retain_unreviewed_s = r.unreviewed_s;
	}
	return store_open(out, &sc, err, errlen);
}

int pipeline_evidence_read(struct mgmt_db *db, const char *state_dir, const struct mgmt_alert *a, uint8_t *jpeg,
			size_t cap, size_t *len, char *err, size_t errlen)
{
	struct store *st = NULL;
	struct store_handle h;
	struct store_alert sa;
	int rc;

	if (!a->evidence[0] || pipeline_evidence_locator_parse(a->evidence, &h) < 0)
		return vg_errf(err, errlen, -ENOENT, "alert %" PRId64 " has no saved evidence", a->id);
	rc = pipeline_store_open(db, state_dir, &st, err, errlen);
	if (rc < 0)
		return rc; /* ERR says why */
	rc = store_deployment_open(st, h.deployment);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "evidence store: deployment %" PRIu64 ": %s", h.deployment, vg_strerror(rc));
		goto out_close;
	}
	pipeline_outcomes_apply(db, st); /* reviews that waited for the store */
	rc = store_get(st, &h, &sa, jpeg, cap, len);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "alert %" PRId64 ": evidence unreadable: %s", a->id, vg_strerror(rc));
		goto out_close;
	}
	if (strncmp(sa.subject, a->subject, sizeof(sa.subject) - 1) != 0 || (int64_t)sa.deployment != a->deployment) {
		vg_scrub(jpeg, *len);
		rc = vg_errf(err, errlen, -EBADMSG, "alert %" PRId64 ": the stored record belongs to another alert", a->id);
	}
out_close:
	sodium_memzero(&sa, sizeof(sa));
	store_close(&st);
	return rc;
}

void pipeline_outcomes_hook(void *arg, struct mgmt_db *db)
{
	struct mgmt_alert_outcome_todo one;
	char err[256];
	struct store *st = NULL;
	int rc;

	if (mgmt_alert_outcome_pending(db, &one, 1) <= 0)
		return;
	rc = pipeline_store_open(db, arg, &st, err, sizeof(err));
	if (rc == -EBUSY || rc == -EWOULDBLOCK)
		return; /* a run holds the store: the next tick, or the run's own open, applies them */
	if (rc < 0) {
		/* No store (no evidence was ever saved): only the decisions without evidence can be marked. */
		pipeline_outcomes_apply(db, NULL);
		return;
	}
	pipeline_outcomes_apply(db, st);
	store_close(&st);
}
