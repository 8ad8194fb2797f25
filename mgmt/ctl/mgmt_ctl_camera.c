/*
 * The camera actions of the control socket (camera.add|list|remove|probe): arguments in, the
 * state library's calls (mgmt.h), JSON out. The probe runs through the hook vigild lends
 * (mgmt_ctl_set_probe), with the camera's credentials unsealed only for the length of the call.
 */
#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"

#define PROBE_SECONDS_MAX 10 /* on the worker (mgmt_ctl_probe.c): one probe at a time holds no other client */

static json_t *camera_json(const struct mgmt_camera *c)
{
	return json_pack("{s:s, s:s, s:s, s:I, s:b, s:s, s:I}", "id", c->id, "url", c->url, "location", c->location,
			 "fps", (json_int_t)c->fps, "credentials", c->has_credentials, "added_by", c->added_by,
			 "added_ns", (json_int_t)c->added_ns);
}

int mgmt_act_camera_add(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	struct mgmt_camera_add req = { 0 };
	struct mgmt_camera cam;
	int rc;

	if ((rc = mgmt_arg_string(args, "id", true, &req.id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "url", true, &req.url, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "location", false, &req.location, err, errlen)) < 0 ||
	    (rc = mgmt_arg_int(args, "fps", false, &req.fps, err, errlen)) < 0)
		return rc;
	rc = mgmt_camera_add(mgmt_ctl_db(ctl), who, &req, err, errlen);
	if (rc < 0)
		return rc;
	if (mgmt_camera_get(mgmt_ctl_db(ctl), req.id, &cam) < 0)
		return vg_errf(err, errlen, -EIO, "camera '%s' was added but cannot be read back", req.id);
	*result = camera_json(&cam);
	return 0;
}

int mgmt_act_camera_remove(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			   char *err, size_t errlen)
{
	const char *id;
	int rc = mgmt_arg_string(args, "id", true, &id, err, errlen);

	if (rc == 0)
		rc = mgmt_camera_remove(mgmt_ctl_db(ctl), who, id, err, errlen);
	if (rc == 0)
		*result = json_pack("{s:s, s:b}", "id", id, "removed", 1);
	return rc;
}

static void add_camera(void *arg, const struct mgmt_camera *c)
{
	json_array_append_new(arg, camera_json(c));
}

int mgmt_act_camera_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			 char *err, size_t errlen)
{
	json_t *list = json_array();

	(void)who;
	(void)args;
	/* Cost: at most 1000 rows, one per camera: an appliance has tens. */
	if (mgmt_camera_list(mgmt_ctl_db(ctl), MGMT_CAMERAS_BY_ID, 1000, add_camera, list) < 0) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o}", "cameras", list);
	return 0;
}

void mgmt_ctl_probe_run(struct mgmt_ctl_probe *job)
{
	job->why[0] = '\0';
	/*
	 * Masked by structure, not by searching the reason for the password (which would rewrite any
	 * unrelated reason that happens to contain a short password): the probe is handed the public
	 * URL and the credentials apart, and its reasons are built from host:port and the request
	 * only (mgmt_probe_fn, dp_rtsp_open).
	 */
	job->rc = job->fn(job->url, job->user, job->password, job->seconds, &job->r, job->why, sizeof(job->why));
	sodium_memzero(job->user, sizeof(job->user));
	sodium_memzero(job->password, sizeof(job->password));
}

int mgmt_ctl_probe_finish(struct mgmt_ctl *ctl, struct mgmt_ctl_probe *job, json_t **result, char *err, size_t errlen)
{
	const struct mgmt_actor who = { job->who_name, job->who_uid, job->who_roles };
	const struct mgmt_probe_result *r = &job->r;
	char object[64];
	json_t *detail;
	char *text;
	int rc = job->rc;

	snprintf(object, sizeof(object), "camera/%s", job->id);
	if (rc < 0)
		detail = json_pack("{s:s}", "error", job->why);
	else
		detail = json_pack("{s:s, s:i, s:i, s:f, s:I, s:I}", "codec", r->codec, "width", r->width, "height",
				   r->height, "fps", r->fps, "packets", (json_int_t)r->packets, "lost", (json_int_t)r->lost);
	text = detail ? json_dumps(detail, JSON_COMPACT) : NULL;
	json_decref(detail);
	/* Reaching out to a camera with its credentials is worth a record, failed or not. */
	mgmt_audit_append(mgmt_ctl_db(ctl), &who, rc < 0 ? "camera.probe.failed" : "camera.probe", object, text, NULL);
	free(text);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "camera '%s' (%s): %s", job->id, job->url,
			       job->why[0] ? job->why : vg_strerror(rc));
	double loss = r->packets + r->lost ? 100.0 * (double)r->lost / (double)(r->packets + r->lost) : 0.0;
	*result = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:f, s:I, s:I, s:I, s:I, s:f, s:I, s:f}", "id", job->id,
			    "url", job->url, "codec", r->codec, "streams", (int)r->streams, "width", r->width, "height",
			    r->height, "fps", r->fps, "packets", (json_int_t)r->packets, "lost", (json_int_t)r->lost,
			    "reordered", (json_int_t)r->reordered, "duplicates", (json_int_t)r->duplicates,
			    "loss_percent", loss, "frames", (json_int_t)r->frames, "seconds", r->seconds);
	return 0;
}

/*
 * Over the socket the probe runs on the worker (mgmt_ctl_probe.c) and this returns -EINPROGRESS;
 * through mgmt_ctl_handle() alone (no socket, no loop to hold up) it runs here.
 */
int mgmt_act_camera_probe(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	struct mgmt_db *db = mgmt_ctl_db(ctl);
	struct mgmt_ctl_probe *job;
	struct mgmt_camera cam;
	const char *id;
	int64_t seconds = 2;
	int rc;

	if ((rc = mgmt_arg_string(args, "id", true, &id, err, errlen)) < 0 ||
	    (rc = mgmt_arg_int(args, "seconds", false, &seconds, err, errlen)) < 0)
		return rc;
	if (seconds < 1 || seconds > PROBE_SECONDS_MAX)
		return vg_errf(err, errlen, -ERANGE, "a probe listens 1 to %d seconds", PROBE_SECONDS_MAX);
	if (!mgmt_camera_id_valid(id) || mgmt_camera_get(db, id, &cam) < 0)
		return vg_errf(err, errlen, -ENOENT, "no camera '%.31s'", id);
	if (!mgmt_ctl_probe(ctl))
		return vg_errf(err, errlen, -EOPNOTSUPP, "this vigild was built without the dataplane: it cannot probe");
	if (ctl->probe_running)
		return vg_errf(err, errlen, -EBUSY, "another camera probe is running; try again when it ends");
	job = calloc(1, sizeof(*job));
	if (!job)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = mgmt_camera_credentials(db, id, job->user, job->password);
	if (rc < 0) {
		free(job);
		return vg_errf(err, errlen, rc, "camera '%s': its credentials cannot be unsealed: %s", id, vg_strerror(rc));
	}
	job->fn = mgmt_ctl_probe(ctl);
	snprintf(job->id, sizeof(job->id), "%s", id);
	snprintf(job->url, sizeof(job->url), "%s", cam.url);
	snprintf(job->who_name, sizeof(job->who_name), "%s", who->name);
	job->who_uid = who->uid;
	job->who_roles = who->roles;
	job->seconds = (unsigned)seconds;
	if (ctl->ep >= 0) {
		rc = mgmt_ctl_probe_submit(ctl, job, err, errlen);
	} else {
		mgmt_ctl_probe_run(job);
		rc = mgmt_ctl_probe_finish(ctl, job, result, err, errlen);
	}
	sodium_memzero(job, sizeof(*job));
	free(job);
	return rc;
}
