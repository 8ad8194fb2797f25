/**
 * @file pipeline_evidence.h
 * Review outcomes into the evidence store, and evidence read back for a reviewer: a review
 * is recorded in the database at once; its retention outcome (store_outcome_set) reaches the
 * store when the store can be opened. `vigild run` holds the store's flock for the length of a
 * run, so vigild serve tries after each review and every 30 s, and whoever opens the store
 * (vigild run's pipeline, vigilctl alert evidence|show) applies what is pending first.
 */
#ifndef PIPELINE_EVIDENCE_H
#define PIPELINE_EVIDENCE_H

#include "mgmt.h"
#include "store.h"

/* Parse an alert's evidence locator ("store:deployment/D/segment/S@OFFSET+LEN#SEQ") into *H. */
int pipeline_evidence_locator_parse(const char *s, struct store_handle *h /* OUT */);

/* Open the evidence store under STATE_DIR with the retention periods mgmt holds (every opener
 * must: the store sweeps by them). As store_open(). */
int pipeline_store_open(struct mgmt_db *db, const char *state_dir, struct store **out, char *err, size_t errlen);

/*
 * Alert A's evidence crop (JPEG) into JPEG (CAP bytes), *LEN its length: the store opened and
 * closed around it, pending review outcomes applied first, the record checked to be A's. 0, or
 * -errno with a one-line reason in ERR (-ENOENT: no saved evidence; -EBUSY: a run holds the store).
 */
int pipeline_evidence_read(struct mgmt_db *db, const char *state_dir, const struct mgmt_alert *a, uint8_t *jpeg,
			size_t cap, size_t *len /* OUT */, char *err, size_t errlen);

/* Apply every pending outcome (mgmt_alert_outcome_pending) to ST. Returns how many, or -errno. */
int pipeline_outcomes_apply(struct mgmt_db *db, struct store *st);

/*
 * vigild serve's hook (mgmt_outcome_fn; ARG is the state directory): when outcomes are pending,
 * open the store, apply them, close it. -EBUSY (a run holds the store) leaves them for later.
 */
void pipeline_outcomes_hook(void *arg, struct mgmt_db *db);

#endif
