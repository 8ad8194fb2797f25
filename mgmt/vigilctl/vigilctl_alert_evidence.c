/*
 * vigilctl alert evidence ID --state-dir DIR --out FILE: export an alert's face crop (JPEG) from the
 * encrypted evidence store, for the reviewer or a court. Reads vigild's state directly, so it needs
 * the appliance key (root); the export is audited in the same chain as everything else.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_ctl.h"
#include "store.h"
#include "vg_base.h"
#include "vg_pool.h"
#include "pipeline_evidence.h"
#include "vigilctl_int.h"

int vigilctl_alert_open(int argc, char **argv, const char **state, const char **out, long long *id,
			struct mgmt_db **db, struct mgmt_alert *a)
{
	static const struct option opts[] = { { "state-dir", required_argument, NULL, 's' },
					      { "out", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 } };
	char err[512], path[600], *end;
	int c;

	*state = "/var/lib/vigil";
	*out = NULL;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			*state = optarg;
		else if (c == 'o')
			*out = optarg;
		else
			return 2;
	}
	if (!*out || optind + 1 != argc)
		return 2;
	*id = strtoll(argv[optind], &end, 10);
	if (*end || *id <= 0)
		return 2;
	snprintf(path, sizeof(path), "%s/vigil.db", *state);
	if (mgmt_db_open(db, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		return 1;
	}
	if (mgmt_alert_get(*db, *id, a) < 0) {
		fprintf(stderr, "vigilctl: no alert %lld\n", *id);
		mgmt_db_close(db);
		return 1;
	}
	return 0;
}

int vigilctl_alert_evidence(int argc, char **argv)
{
	const char *state, *out;
	char err[512];
	struct mgmt_db *db = NULL;
	struct mgmt_alert a;
	uint8_t *jpeg = NULL;
	size_t len = 0, cap = 4u << 20;
	long long id;
	int rc;

	rc = vigilctl_alert_open(argc, argv, &state, &out, &id, &db, &a);
	if (rc == 2) {
		return vigilctl_usage("evidence ID --out FILE [--state-dir DIR]");
	}
	if (rc)
		return rc;
	rc = 1;
	jpeg = malloc(cap);
	if (!jpeg)
		goto out;
	if (pipeline_evidence_read(db, state, &a, jpeg, cap, &len, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		goto out;
	}
	int fd = vigilctl_out_open(out);
	if (fd < 0)
		goto out;
	if (write(fd, jpeg, len) != (ssize_t)len || close(fd) < 0) {
		fprintf(stderr, "vigilctl: cannot write %s: %s\n", out, vg_strerror(-errno));
		goto out;
	}
	struct mgmt_actor who = { "vigilctl", (uint32_t)getuid(), 0 };
	char object[48];
	snprintf(object, sizeof(object), "alert/%lld", id);
	mgmt_audit_append(db, &who, "evidence.export", object, NULL, NULL);
	printf("alert %lld: %zu bytes of JPEG evidence written to %s\n", id, len, out);
	rc = 0;
out:
	if (jpeg)
		vg_scrub(jpeg, len);
	free(jpeg);
	mgmt_db_close(&db);
	return rc;
}
