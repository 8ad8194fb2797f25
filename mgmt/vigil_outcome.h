/*
 * Review outcomes into the evidence store (private to mgmt's programs that link store/): a review
 * is recorded in the database at once; its retention outcome (store_outcome_set) reaches the
 * store when the store can be opened. `vigild run` holds the store's flock for the length of a
 * run, so vigild serve tries after each review and every 30 s, and whoever opens the store
 * (vigild run's pipeline, vigilctl alert evidence|show) applies what is pending first.
 */
#ifndef VIGIL_OUTCOME_H
#define VIGIL_OUTCOME_H

#include "mgmt.h"
#include "store.h"

/* Parse an alert's evidence locator ("store:deployment/D/segment/S@OFFSET+LEN#SEQ") into *H. */
int vigil_evidence_locator_parse(const char *s, struct store_handle *h /* OUT */);

/* Apply every pending outcome (mgmt_alert_outcome_pending) to ST. Returns how many, or -errno. */
int vigil_outcomes_apply(struct mgmt_db *db, struct store *st);

/*
 * vigild serve's hook (mgmt_outcome_fn; ARG is the state directory): when outcomes are pending,
 * open the store, apply them, close it. -EBUSY (a run holds the store) leaves them for later.
 */
void vigil_outcomes_hook(void *arg, struct mgmt_db *db);

#endif
