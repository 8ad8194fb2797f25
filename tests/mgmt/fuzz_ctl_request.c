/*
 * Fuzz target: one control-socket request, as an admin+operator+auditor, against a real database
 * made on the first call. Every input gets a reply that is one JSON line saying ok or why not.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_ctl.h"
#include "vg_test.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mgmt_db *db;
static struct mgmt_ctl *ctl;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Admin too, so the admin's verbs (camera.add's URL splitting, retention.set) parse what comes. */
	static const struct mgmt_actor who = { "fuzz.operator", 3000,
					       MGMT_ROLE_ADMIN | MGMT_ROLE_OPERATOR | MGMT_ROLE_AUDITOR };
	char err[256], *reply = NULL;

	if (!db) {
		char dir[200], path[300];

		if (!vg_test_tmpdir("fuzz-ctl", dir, sizeof(dir)))
			abort();
		snprintf(path, sizeof(path), "%s/vigil.db", dir);
		if (mgmt_db_open(&db, path, err, sizeof(err)) < 0 || mgmt_ctl_open(&ctl, db, NULL, NULL, err, sizeof(err)) < 0)
			abort();
	}
	mgmt_ctl_handle(ctl, &who, (const char *)data, size, &reply);
	if (!reply)
		abort();
	json_t *j = json_loads(reply, 0, NULL);
	if (!j || !json_is_boolean(json_object_get(j, "ok")) || strchr(reply, '\n'))
		abort(); /* every reply is one JSON line with "ok" */
	json_decref(j);
	free(reply);
	return 0;
}
