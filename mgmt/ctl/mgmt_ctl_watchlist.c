/*
 * The watchlist actions of the control socket (watchlist.add|list|show|remove|purge): the files
 * vigilctl passes with watchlist.add (SCM_RIGHTS) go to mgmt_watchlist_add(); the rest are the
 * state library's calls with JSON around them. Subject ids are shown, never descriptors.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"

#define WL_SHOW_MAX 5000             /* subjects in one reply: keeps it under the 1 MiB reply cap */
#define WL_SHOW_DEPLOYMENTS_MAX 1000 /* deployments listed under one watchlist */

static json_t *watchlist_json(const struct mgmt_watchlist *w)
{
	return json_pack("{s:s, s:s, s:f, s:I, s:s, s:s, s:b, s:s, s:I, s:s, s:s?, s:I, s:s?}", "id", w->id, "name",
			 w->name, "threshold", w->threshold, "subjects", (json_int_t)w->subjects, "sha256", w->sha256, "path",
			 w->path, "enrolment_crops", w->has_faces, "created_by", w->created_by, "created_ns",
			 (json_int_t)w->created_ns, "state", mgmt_watchlist_state_name(w->state), "ended_by",
			 w->ended_by[0] ? w->ended_by : NULL, "ended_ns", (json_int_t)w->ended_ns, "end_reason",
			 w->end_reason[0] ? w->end_reason : NULL);
}

int mgmt_act_watchlist_add(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
			   size_t errlen)
{
	struct mgmt_watchlist w;
	json_t *t = json_object_get(args, "threshold");
	const char *name;
	int fd, faces_fd, rc;

	if ((rc = mgmt_arg_string(args, "name", true, &name, err, errlen)) < 0)
		return rc;
	if (t && !json_is_number(t))
		return vg_errf(err, errlen, -EINVAL, "argument 'threshold' must be a number");
	fd = mgmt_ctl_take_fd(ctl, 0);
	if (fd < 0)
		return vg_errf(err, errlen, -EBADF,
			       "watchlist.add needs the watchlist file passed with the request (vigilctl watchlist add FILE)");
	faces_fd = mgmt_ctl_take_fd(ctl, 1);
	rc = mgmt_watchlist_add(mgmt_ctl_db(ctl), who, fd, faces_fd, name, t ? json_number_value(t) : 0, &w, err, errlen);
	close(fd);
	if (faces_fd >= 0)
		close(faces_fd);
	if (rc == 0)
		*result = watchlist_json(&w);
	return rc;
}

static void add_watchlist(void *arg, const struct mgmt_watchlist *w)
{
	json_array_append_new(arg, watchlist_json(w));
}

int mgmt_act_watchlist_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	json_t *list = json_array();

	(void)who, (void)args;
	if (mgmt_watchlist_list(mgmt_ctl_db(ctl), 1000, add_watchlist, list) < 0) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o}", "watchlists", list);
	return 0;
}

static void add_subject(void *arg, const char *subject)
{
	json_array_append_new(arg, json_string(subject));
}

int mgmt_act_watchlist_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	struct mgmt_db *db = mgmt_ctl_db(ctl);
	struct mgmt_watchlist w;
	const char *id;
	json_t *subjects;
	int rc;

	(void)who;
	if ((rc = mgmt_arg_string(args, "id", true, &id, err, errlen)) < 0)
		return rc;
	if (!mgmt_watchlist_id_valid(id) || mgmt_watchlist_get(db, id, &w) < 0)
		return vg_errf(err, errlen, -ENOENT, "no watchlist %.32s", id);
	*result = watchlist_json(&w);
	if (w.state == MGMT_WATCHLIST_LIVE) {
		subjects = json_array();
		rc = mgmt_watchlist_subjects(db, id, WL_SHOW_MAX, add_subject, subjects);
		json_object_set_new(*result, "subject_ids", subjects);
		/* Whether the file in custody is still the one registered: what an auditor checks. */
		json_object_set_new(*result, "seal_ok", json_boolean(rc >= 0));
		if (rc < 0)
			json_object_set_new(*result, "file_error", json_string(vg_strerror(rc)));
		else if ((size_t)rc > WL_SHOW_MAX)
			json_object_set_new(*result, "subject_ids_truncated", json_true());
	}
	json_t *deps = json_array();
	int64_t dep_ids[WL_SHOW_DEPLOYMENTS_MAX];
	int n = mgmt_watchlist_deployments(db, id, dep_ids, VG_ARRAY_SIZE(dep_ids));

	for (int i = 0; i < n; i++)
		json_array_append_new(deps, json_integer(dep_ids[i]));
	json_object_set_new(*result, "deployments", deps);
	return 0;
}

int mgmt_act_watchlist_remove(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			      char *err, size_t errlen)
{
	const char *id, *reason;
	int rc;

	if ((rc = mgmt_arg_string(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reason", true, &reason, err, errlen)) < 0)
		return rc;
	rc = mgmt_watchlist_remove(mgmt_ctl_db(ctl), who, id, false, reason, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:s, s:s}", "id", id, "state", "removed");
	return rc;
}

/* With an id: that one. Without: every live watchlist no authorised or active deployment names. */
int mgmt_act_watchlist_purge(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			     char *err, size_t errlen)
{
	struct mgmt_db *db = mgmt_ctl_db(ctl);
	const char *id, *reason;
	char ids[256][16];
	size_t n = 0;
	int rc;

	if ((rc = mgmt_arg_string(args, "id", false, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "reason", false, &reason, err, errlen)) < 0)
		return rc;
	if (!reason)
		reason = "purged by hand";
	if (id) {
		rc = mgmt_watchlist_remove(db, who, id, true, reason, err, errlen);
		if (rc == 0)
			*result = json_pack("{s:[s]}", "purged", id);
		return rc;
	}
	/* At most 256 a call: a caller comes back for the rest. */
	rc = mgmt_watchlist_unused(db, ids, VG_ARRAY_SIZE(ids));
	if (rc < 0)
		return vg_errf(err, errlen, -EIO, "database error");
	n = (size_t)rc;
	json_t *done = json_array();
	for (size_t i = 0; i < n; i++) {
		rc = mgmt_watchlist_remove(db, who, ids[i], true, reason, err, errlen);
		if (rc < 0) {
			json_decref(done);
			return rc;
		}
		json_array_append_new(done, json_string(ids[i]));
	}
	*result = json_pack("{s:o}", "purged", done);
	return 0;
}
