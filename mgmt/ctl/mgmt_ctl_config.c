/*
 * The settings actions of the control socket: config.get|set over the live settings vigild lends
 * (mgmt_ctl_set_conf), retention.show|set. The state changes are mgmt_setting_set() and
 * mgmt_retention_set() (mgmt.h); this file turns arguments and results into JSON.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"
#include "vg_conf.h"

#define SETTING_TEXT_MAX 8448 /* the longest setting (vigild.people, 8192) and room to spare */
#define DAY_S 86400ull
#define RETENTION_DAYS_MAX 3650

static json_t *setting_json(struct mgmt_db *db, const struct vg_conf_set *set, const struct vg_conf_entry *e)
{
	char *value = malloc(SETTING_TEXT_MAX);
	json_t *j;

	if (!value)
		return NULL;
	if (vg_conf_get_value(set, e->name, value, SETTING_TEXT_MAX) < 0)
		snprintf(value, SETTING_TEXT_MAX, "?");
	j = json_pack("{s:s, s:s, s:b, s:b, s:s}", "name", e->name, "value", value, "mutable",
		      (e->flags & VG_CONF_MUTABLE) != 0, "stored", mgmt_setting_stored(db, e->name), "help", e->help);
	free(value);
	return j;
}

int mgmt_act_config_get(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	const struct vg_conf_set *set;
	mgmt_conf_apply_fn *apply;
	void *arg;
	const char *name;
	json_t *list;
	int rc;

	(void)who;
	mgmt_ctl_conf(ctl, &set, &apply, &arg);
	if ((rc = mgmt_arg_string(args, "name", false, &name, err, errlen)) < 0)
		return rc;
	if (!set)
		return vg_errf(err, errlen, -EOPNOTSUPP, "this vigild serves no settings");
	if (name && !vg_conf_find(set, name))
		return vg_errf(err, errlen, -ENOENT, "unknown setting '%.64s' (vigilctl config get lists them)", name);
	list = json_array();
	for (size_t t = 0; t < set->n; t++)
		for (size_t i = 0; i < set->tables[t]->n_entries; i++) {
			const struct vg_conf_entry *e = &set->tables[t]->entries[i];

			if (!name || strcmp(name, e->name) == 0)
				json_array_append_new(list, setting_json(mgmt_ctl_db(ctl), set, e));
		}
	*result = json_pack("{s:o}", "settings", list);
	return 0;
}

int mgmt_act_config_set(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result, char *err,
			size_t errlen)
{
	const struct vg_conf_set *set;
	mgmt_conf_apply_fn *apply;
	void *arg;
	const char *name, *value;
	char *old;
	int rc;

	mgmt_ctl_conf(ctl, &set, &apply, &arg);
	if ((rc = mgmt_arg_string(args, "name", true, &name, err, errlen)) < 0 ||
	    (rc = mgmt_arg_string(args, "value", true, &value, err, errlen)) < 0)
		return rc;
	if (!set || !apply)
		return vg_errf(err, errlen, -EOPNOTSUPP, "this vigild serves no settings");
	old = malloc(SETTING_TEXT_MAX);
	if (!old)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = mgmt_setting_set(mgmt_ctl_db(ctl), who, set, name, value, apply, arg, old, SETTING_TEXT_MAX, err, errlen);
	if (rc == 0) {
		*result = setting_json(mgmt_ctl_db(ctl), set, vg_conf_find(set, name));
		if (*result)
			json_object_set_new(*result, "old", json_string(old));
	}
	free(old);
	return rc;
}

static json_t *retention_json(const struct mgmt_retention *r)
{
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}", "confirmed_days", (json_int_t)(r->confirmed_s / DAY_S),
			 "rejected_days", (json_int_t)(r->rejected_s / DAY_S), "unreviewed_days",
			 (json_int_t)(r->unreviewed_s / DAY_S), "confirmed_s", (json_int_t)r->confirmed_s,
			 "rejected_s", (json_int_t)r->rejected_s, "unreviewed_s", (json_int_t)r->unreviewed_s);
}

int mgmt_act_retention_show(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	struct mgmt_retention r;
	int rc = mgmt_retention_get(mgmt_ctl_db(ctl), &r);

	(void)who;
	(void)args;
	if (rc < 0)
		return vg_errf(err, errlen, rc, "database error");
	*result = retention_json(&r);
	return 0;
}

int mgmt_act_retention_set(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			   char *err, size_t errlen)
{
	static const char *const keys[] = { "confirmed_days", "rejected_days", "unreviewed_days" };
	int64_t days[3];
	struct mgmt_retention r;
	int rc;

	for (size_t i = 0; i < VG_ARRAY_SIZE(keys); i++) {
		if ((rc = mgmt_arg_int(args, keys[i], true, &days[i], err, errlen)) < 0)
			return rc;
		if (days[i] < 0 || days[i] > RETENTION_DAYS_MAX)
			return vg_errf(err, errlen, -ERANGE, "%s must be 0 to %d", keys[i], RETENTION_DAYS_MAX);
	}
	r = (struct mgmt_retention){ (uint64_t)days[0] * DAY_S, (uint64_t)days[1] * DAY_S, (uint64_t)days[2] * DAY_S };
	rc = mgmt_retention_set(mgmt_ctl_db(ctl), who, &r, err, errlen);
	if (rc == 0)
		*result = retention_json(&r);
	return rc;
}
