/*
 * seed_alert STATE_DIR DEPLOYMENT SUBJECT WATCHLIST JPEG: what the pipeline does when it alerts,
 * without a camera: the JPEG stored as the alert's evidence in the encrypted store (durable
 * first), then the alert raised for review in the database. Prints the alert's id. For the CLI
 * tests of review and `alert show --out`, which need an alert with evidence behind it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mgmt.h"
#include "store.h"

int main(int argc, char **argv)
{
	static const struct mgmt_actor vigild = { "vigild", 0, 0 };
	char err[512], path[600], dir[600], key[600];
	struct mgmt_db *db = NULL;
	struct store *st = NULL;
	struct store_alert sa = { 0 };
	struct store_handle h;
	struct mgmt_alert a = { 0 };
	static uint8_t jpeg[1 << 20];
	FILE *f;
	size_t len;

	if (argc != 6) {
		fprintf(stderr, "usage: seed_alert STATE_DIR DEPLOYMENT SUBJECT WATCHLIST JPEG\n");
		return 2;
	}
	f = fopen(argv[5], "rb");
	if (!f || (len = fread(jpeg, 1, sizeof(jpeg), f)) == 0) {
		fprintf(stderr, "seed_alert: cannot read %s\n", argv[5]);
		return 1;
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/vigil.db", argv[1]);
	snprintf(dir, sizeof(dir), "%s/evidence", argv[1]);
	snprintf(key, sizeof(key), "%s/appliance.key", argv[1]);
	struct store_conf sc = { .dir = dir, .appliance_key_path = key, .create_appliance_key = true };
	if (mgmt_db_open(&db, path, err, sizeof(err)) < 0 || store_open(&st, &sc, err, sizeof(err)) < 0) {
		fprintf(stderr, "seed_alert: %s\n", err);
		return 1;
	}
	a.deployment = strtoll(argv[2], NULL, 10);
	sa.deployment = (uint64_t)a.deployment;
	snprintf(sa.camera, sizeof(sa.camera), "cam1");
	snprintf(sa.subject, sizeof(sa.subject), "%s", argv[3]);
	snprintf(sa.watchlist, sizeof(sa.watchlist), "%s", argv[4]);
	snprintf(sa.metric, sizeof(sa.metric), "l2");
	sa.value = 0.42f;
	sa.threshold = 0.5f;
	struct store_crop crop = { STORE_CROP_JPEG, jpeg, len, 0, 0 };
	if (store_deployment_open(st, sa.deployment) < 0 || store_put(st, &sa, &crop, &h) < 0) {
		fprintf(stderr, "seed_alert: the evidence was not stored\n");
		return 1;
	}
	snprintf(a.camera, sizeof(a.camera), "cam1");
	snprintf(a.subject, sizeof(a.subject), "%s", argv[3]);
	snprintf(a.watchlist, sizeof(a.watchlist), "%s", argv[4]);
	/* The seal of the watchlist in custody, as the pipeline names the one it matched. */
	struct mgmt_watchlist w;
	if (mgmt_watchlist_get(db, argv[4], &w) == 0)
		snprintf(a.watchlist_seal, sizeof(a.watchlist_seal), "%s", w.sha256);
	snprintf(a.metric, sizeof(a.metric), "l2");
	a.value = 0.42;
	a.threshold = 0.5;
	a.track = 1;
	snprintf(a.evidence, sizeof(a.evidence), "store:deployment/%" PRIu64 "/segment/%u@%" PRIu64 "+%u#%" PRIu64,
		 h.deployment, h.segment, h.offset, h.len, h.seq);
	store_close(&st);
	if (mgmt_alert_raise(db, &vigild, &a) < 0) {
		fprintf(stderr, "seed_alert: the alert was refused (is the deployment active?)\n");
		return 1;
	}
	mgmt_deployment_add_scanned(db, a.deployment, 25);
	printf("%" PRId64 "\n", a.id);
	mgmt_db_close(&db);
	return 0;
}
