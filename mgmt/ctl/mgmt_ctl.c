/*
 * The action table and its dispatch (mgmt_ctl.h): one table serves the socket and
 * mgmt_ctl_handle() (FD.io VPP's CLI/API sharing), so the CLI, the socket and the console cannot
 * disagree on a verb or on who may call it. The actions themselves are in mgmt_ctl_<domain>.c;
 * the socket that carries requests is mgmt_ctl_socket.c.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

#define ALL_ROLES (MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR | MGMT_ROLE_AUDITOR)

/* ---- the action table: every verb, who may call it, and what it does --------------------------- */

static const struct ctl_action {
	const char *verb;
	unsigned roles; /* any of these may call it */
	mgmt_ctl_action_fn *fn;
	const char *help;
} actions[] = {
	{ "status", ALL_ROLES, mgmt_act_status, "what vigild runs, and who you are to it" },
	{ "deployment.create", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_deployment_create,
	  "request a deployment: name, use_case, location, start, end, justification, watchlists" },
	{ "deployment.authorise", MGMT_ROLE_AUTHORISER, mgmt_act_deployment_authorise, "authorise a deployment: id, reasons" },
	{ "deployment.refuse", MGMT_ROLE_AUTHORISER, mgmt_act_deployment_refuse, "refuse a deployment: id, reasons" },
	{ "deployment.withdraw", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_deployment_withdraw,
	  "withdraw your own request before it starts: id, reason" },
	{ "deployment.start", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER, mgmt_act_deployment_start, "start: id" },
	{ "deployment.stop", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER, mgmt_act_deployment_stop, "stop: id, reason" },
	{ "deployment.show", ALL_ROLES, mgmt_act_deployment_show, "one deployment: id" },
	{ "deployment.list", ALL_ROLES, mgmt_act_deployment_list, "every deployment, newest first" },
	{ "alert.list", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER | MGMT_ROLE_AUDITOR, mgmt_act_alert_list,
	  "alerts, newest first, or {unreviewed: true} for those awaiting a decision" },
	{ "alert.show", MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER | MGMT_ROLE_AUDITOR, mgmt_act_alert_show, "one alert: id" },
	{ "alert.review", MGMT_ROLE_OPERATOR, mgmt_act_alert_review, "a person's decision: id, decision (confirm|reject), note" },
	{ "audit.list", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, mgmt_act_audit_list,
	  "audit entries after seq 'since', 1000 at most" },
	{ "audit.verify", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, mgmt_act_audit_verify,
	  "check the whole hash chain and its signed head, against a pinned 'public_key' (hex) if given" },
	{ "audit.export", MGMT_ROLE_AUDITOR | MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER, mgmt_act_audit_export,
	  "the chain with its hashes after seq 'since', 1000 at most, and the signed head; since 0 audits the export" },
	{ "camera.add", MGMT_ROLE_ADMIN, mgmt_act_camera_add, "add a camera: id, url, location, fps" },
	{ "camera.remove", MGMT_ROLE_ADMIN, mgmt_act_camera_remove, "remove a camera: id" },
	{ "camera.list", ALL_ROLES, mgmt_act_camera_list, "every camera, URLs without credentials" },
	{ "camera.probe", MGMT_ROLE_ADMIN, mgmt_act_camera_probe,
	  "connect to a camera and report codec, resolution, frame rate, loss: id, seconds" },
	{ "config.get", MGMT_ROLE_ADMIN | MGMT_ROLE_AUDITOR | MGMT_ROLE_AUTHORISER, mgmt_act_config_get,
	  "vigild's settings, or one: name" },
	{ "config.set", MGMT_ROLE_ADMIN, mgmt_act_config_set, "change a run-time setting, kept across restarts: name, value" },
	{ "retention.show", ALL_ROLES, mgmt_act_retention_show, "evidence retention per review outcome" },
	{ "retention.set", MGMT_ROLE_ADMIN, mgmt_act_retention_set,
	  "set evidence retention: confirmed_days, rejected_days, unreviewed_days" },
	{ "watchlist.add", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_add,
	  "register the watchlist file passed with the request (and its enrolment crops): name, threshold" },
	{ "watchlist.list", ALL_ROLES, mgmt_act_watchlist_list, "every watchlist record, newest first" },
	{ "watchlist.show", ALL_ROLES, mgmt_act_watchlist_show, "one watchlist and its subject ids (never descriptors): id" },
	{ "watchlist.remove", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_remove,
	  "delete a watchlist's files, keeping its record: id, reason" },
	{ "watchlist.purge", MGMT_ROLE_ADMIN | MGMT_ROLE_AUTHORISER | MGMT_ROLE_OPERATOR, mgmt_act_watchlist_purge,
	  "purge one watchlist (id), or every one no authorised deployment names; reason" },
};

static void audit_refusal(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *verb);

/* ---- dispatch ------------------------------------------------------------------------------- */

char *mgmt_ctl_reply_error(int rc, const char *msg)
{
	const char *name = strerrorname_np(rc < 0 ? -rc : rc);
	json_t *j = json_pack("{s:b, s:s, s:s}", "ok", 0, "error", msg, "errno", name ? name : "EIO");
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

int mgmt_ctl_handle(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *request, size_t len, char **reply)
{
	const struct ctl_action *act = NULL;
	char err[512] = "";
	json_t *req, *args, *result = NULL;
	json_error_t jerr;
	const char *verb;
	int rc;

	*reply = NULL;
	if (len > MGMT_CTL_REQUEST_MAX) {
		*reply = mgmt_ctl_reply_error(-E2BIG, "request longer than 65536 bytes");
		return -E2BIG;
	}
	/* JSON_REJECT_DUPLICATES: {"id":1,"id":2} must not mean different things to different readers. */
	req = json_loadb(request, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!req) {
		snprintf(err, sizeof(err), "malformed request: %s at byte %d", jerr.text, jerr.position);
		*reply = mgmt_ctl_reply_error(-EINVAL, err);
		return -EINVAL;
	}
	verb = json_string_value(json_object_get(req, "verb"));
	args = json_object_get(req, "args");
	if (!json_is_object(req) || !verb || (args && !json_is_object(args))) {
		json_decref(req);
		*reply = mgmt_ctl_reply_error(-EINVAL, "a request is {\"verb\": string, \"args\": object}");
		return -EINVAL;
	}
	for (size_t i = 0; i < VG_ARRAY_SIZE(actions); i++)
		if (strcmp(actions[i].verb, verb) == 0)
			act = &actions[i];
	if (!act) {
		snprintf(err, sizeof(err), "unknown verb '%.64s'", verb);
		json_decref(req);
		*reply = mgmt_ctl_reply_error(-EOPNOTSUPP, err);
		return -EOPNOTSUPP;
	}
	if (!(who->roles & act->roles)) {
		/* Refusals are state worth keeping (who tried what), but not at a rate one uid chooses. */
		audit_refusal(ctl, who, act->verb);
		snprintf(err, sizeof(err), "%s may not %s: that needs another role", who->name, act->verb);
		json_decref(req);
		*reply = mgmt_ctl_reply_error(-EPERM, err);
		return -EPERM;
	}
	json_t *empty = args ? NULL : json_object();
	rc = act->fn(ctl, who, args ? args : empty, &result, err, sizeof(err));
	json_decref(empty);
	json_decref(req);
	if (rc == -EINPROGRESS)
		return rc; /* the probe worker answers it (mgmt_ctl_probe.c) */
	if (rc < 0) {
		*reply = mgmt_ctl_reply_error(rc, err[0] ? err : vg_strerror(rc));
		return rc;
	}
	*reply = mgmt_ctl_reply_ok(result);
	return *reply ? 0 : -ENOMEM;
}

char *mgmt_ctl_reply_ok(json_t *result)
{
	json_t *j = json_pack("{s:b, s:o}", "ok", 1, "result", result ? result : json_object());
	char *s = json_dumps(j, JSON_COMPACT);

	json_decref(j);
	return s;
}

/* ---- refusals: the first per uid per window audited now, the rest as one count at its end ------- */

static void refusal_write(struct mgmt_ctl *ctl, const struct ctl_refusals *r, unsigned more)
{
	const struct mgmt_actor who = { r->name, r->uid, 0 };
	char object[96], detail[96];

	snprintf(object, sizeof(object), "verb/%s", r->verb);
	if (more)
		snprintf(detail, sizeof(detail), "{\"more\":%u,\"within_s\":%d}", more, MGMT_CTL_REFUSAL_WINDOW_S);
	mgmt_audit_append(ctl->db, &who, "request.refused", object, more ? detail : NULL, NULL);
}

void mgmt_ctl_refusals_flush(struct mgmt_ctl *ctl, uint64_t now_ns)
{
	for (unsigned i = 0; i < MGMT_CTL_REFUSAL_SLOTS; i++) {
		struct ctl_refusals *r = &ctl->refusals[i];

		/* Not now - since: NOW may be read before a refusal later in the same pass. */
		if (!r->used || now_ns < r->since_ns + MGMT_CTL_REFUSAL_WINDOW_S * VG_NS_PER_SEC)
			continue;
		if (r->more)
			refusal_write(ctl, r, r->more);
		r->used = false;
	}
}

uint64_t mgmt_ctl_refusals_next(const struct mgmt_ctl *ctl, uint64_t next_ns)
{
	for (unsigned i = 0; i < MGMT_CTL_REFUSAL_SLOTS; i++) {
		const struct ctl_refusals *r = &ctl->refusals[i];
		uint64_t ends = r->since_ns + MGMT_CTL_REFUSAL_WINDOW_S * VG_NS_PER_SEC;

		if (r->used && r->more && ends < next_ns)
			next_ns = ends;
	}
	return next_ns;
}

/*
 * At most 2 entries per uid per window whatever the uid sends; with the slots full (64 uids
 * refused within a window), the oldest window is closed early, its count written.
 */
static void audit_refusal(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *verb)
{
	struct ctl_refusals *r = NULL, *oldest = &ctl->refusals[0];
	uint64_t now = vg_clock_ns();

	mgmt_ctl_refusals_flush(ctl, now);
	for (unsigned i = 0; i < MGMT_CTL_REFUSAL_SLOTS && !r; i++) {
		struct ctl_refusals *s = &ctl->refusals[i];

		if (s->used && s->uid == who->uid)
			r = s;
		else if (!s->used || (oldest->used && s->since_ns < oldest->since_ns))
			oldest = s;
	}
	if (r) {
		r->more++;
		snprintf(r->verb, sizeof(r->verb), "%s", verb);
		return;
	}
	if (oldest->used && oldest->more)
		refusal_write(ctl, oldest, oldest->more);
	r = oldest;
	*r = (struct ctl_refusals){ .uid = who->uid, .used = true, .since_ns = now };
	snprintf(r->name, sizeof(r->name), "%s", who->name);
	snprintf(r->verb, sizeof(r->verb), "%s", verb);
	refusal_write(ctl, r, 0);
}

/* ---- argument helpers (for every action file, through mgmt_ctl_int.h) ---------------------------- */

int mgmt_arg_string(json_t *args, const char *key, bool required, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, key);

	*out = NULL;
	if (!v)
		return required ? vg_errf(err, errlen, -EINVAL, "missing argument '%s'", key) : 0;
	if (!json_is_string(v))
		return vg_errf(err, errlen, -EINVAL, "argument '%s' must be a string", key);
	*out = json_string_value(v);
	return 0;
}

int mgmt_arg_int(json_t *args, const char *key, bool required, int64_t *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(args, key);

	if (!v)
		return required ? vg_errf(err, errlen, -EINVAL, "missing argument '%s'", key) : 0;
	if (!json_is_integer(v))
		return vg_errf(err, errlen, -EINVAL, "argument '%s' must be an integer", key);
	*out = json_integer_value(v);
	return 0;
}

/* ---- what vigild lends the actions ----------------------------------------------------------- */

void mgmt_ctl_set_people(struct mgmt_ctl *ctl, const struct mgmt_people *people)
{
	ctl->people = people;
}

void mgmt_ctl_set_conf(struct mgmt_ctl *ctl, const struct vg_conf_set *set, mgmt_conf_apply_fn *apply, void *arg)
{
	ctl->conf = set;
	ctl->conf_apply = apply;
	ctl->conf_arg = arg;
}

void mgmt_ctl_set_max_window(struct mgmt_ctl *ctl, int64_t max_window_s)
{
	ctl->max_window_s = max_window_s;
}

void mgmt_ctl_set_model(struct mgmt_ctl *ctl, const char *model_id, const struct match_calib *calib,
			double max_expected_per_1000)
{
	snprintf(ctl->model_id, sizeof(ctl->model_id), "%s", model_id ? model_id : "");
	ctl->calib = calib;
	ctl->max_expected_per_1000 = max_expected_per_1000;
}

void mgmt_ctl_set_probe(struct mgmt_ctl *ctl, mgmt_probe_fn *probe)
{
	ctl->probe = probe;
}

struct mgmt_db *mgmt_ctl_db(const struct mgmt_ctl *ctl)
{
	return ctl->db;
}

mgmt_probe_fn *mgmt_ctl_probe(const struct mgmt_ctl *ctl)
{
	return ctl->probe;
}

void mgmt_ctl_conf(const struct mgmt_ctl *ctl, const struct vg_conf_set **set, mgmt_conf_apply_fn **apply, void **arg)
{
	*set = ctl->conf;
	*apply = ctl->conf_apply;
	*arg = ctl->conf_arg;
}

void mgmt_ctl_set_outcome(struct mgmt_ctl *ctl, mgmt_outcome_fn *fn, void *arg)
{
	ctl->outcome = fn;
	ctl->outcome_arg = arg;
}

void mgmt_ctl_set_capture(struct mgmt_ctl *ctl, mgmt_capture_status_fn *fn, void *arg)
{
	ctl->capture_status = fn;
	ctl->capture_arg = arg;
}

void mgmt_ctl_set_purge(struct mgmt_ctl *ctl, mgmt_purge_fn *purge, void *arg)
{
	ctl->purge = purge;
	ctl->purge_arg = arg;
}
