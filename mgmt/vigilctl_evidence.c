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

#include "mgmt.h"
#include "store.h"
#include "vg_base.h"
#include "vg_pool.h"
#include "vigil_outcome.h"

int vigilctl_alert_evidence(int argc, char **argv);

/* "store:deployment/D/segment/S@OFFSET+LEN#SEQ", as vigild_pipeline.c writes it. */
static int parse_locator(const char *s, struct store_handle *h)
{
	unsigned long long d, off, seq;
	unsigned seg, len;

	if (sscanf(s, "store:deployment/%llu/segment/%u@%llu+%u#%llu", &d, &seg, &off, &len, &seq) != 5)
		return -EINVAL;
	*h = (struct store_handle){ .deployment = d, .seq = seq, .segment = seg, .len = len, .offset = off, .saved = true };
	return 0;
}

int vigilctl_alert_evidence(int argc, char **argv)
{
	static const struct option opts[] = { { "state-dir", required_argument, NULL, 's' },
					      { "out", required_argument, NULL, 'o' }, { NULL, 0, NULL, 0 } };
	const char *state = "/var/lib/vigil", *out = NULL;
	char err[512], path[600], dir[600], key[600];
	struct mgmt_db *db = NULL;
	struct store *st = NULL;
	struct mgmt_alert a;
	struct store_handle h;
	struct store_alert sa;
	uint8_t *jpeg = NULL;
	size_t len = 0, cap = 4u << 20;
	int c, rc = 1;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c == 'o')
			out = optarg;
		else
			goto usage;
	}
	if (!out || optind + 1 != argc)
		goto usage;
	char *end;
	long long id = strtoll(argv[optind], &end, 10);
	if (*end || id <= 0)
		goto usage;
	snprintf(path, sizeof(path), "%s/vigil.db", state);
	if (mgmt_db_open(&db, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		return 1;
	}
	if (mgmt_alert_get(db, id, &a) < 0) {
		fprintf(stderr, "vigilctl: no alert %lld\n", id);
		goto out;
	}
	if (!a.evidence[0] || parse_locator(a.evidence, &h) < 0) {
		fprintf(stderr, "vigilctl: alert %lld has no saved evidence\n", id);
		goto out;
	}
	snprintf(dir, sizeof(dir), "%s/evidence", state);
	snprintf(key, sizeof(key), "%s/appliance.key", state);
	struct store_conf sc = { .dir = dir, .appliance_key_path = key };
	if (store_open(&st, &sc, err, sizeof(err)) < 0 || store_deployment_open(st, h.deployment) < 0) {
		fprintf(stderr, "vigilctl: evidence store: %s\n", err[0] ? err : "cannot open the deployment");
		goto out;
	}
	vigil_outcomes_apply(db, st); /* reviews that waited for the store (vigil_outcome.h) */
	jpeg = malloc(cap);
	if (!jpeg)
		goto out;
	int r = store_get(st, &h, &sa, jpeg, cap, &len);
	if (r < 0) {
		fprintf(stderr, "vigilctl: alert %lld: evidence unreadable: %s\n", id, vg_strerror(r));
		goto out;
	}
	if (strncmp(sa.subject, a.subject, sizeof(sa.subject) - 1) != 0 || (int64_t)sa.deployment != a.deployment) {
		fprintf(stderr, "vigilctl: alert %lld: the stored record belongs to another alert\n", id);
		goto out;
	}
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, jpeg, len) != (ssize_t)len || close(fd) < 0) {
		fprintf(stderr, "vigilctl: cannot write %s\n", out);
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
	store_close(&st);
	mgmt_db_close(&db);
	return rc;
usage:
	fprintf(stderr, "vigilctl: alert evidence ID --out FILE [--state-dir DIR]\n");
	return 2;
}
