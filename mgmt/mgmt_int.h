/* The state library's private layout and helpers shared by its files (not for other parts of mgmt). */
#ifndef MGMT_INT_H
#define MGMT_INT_H

#include <sqlite3.h>
#include <sys/types.h>

#include "mgmt.h"

struct mgmt_db {
	sqlite3 *sql;
	char *anchor_path; /* the audit head anchor: "<seq> <hex hash> ed25519 <hex key> <hex sig>\n" */
	char *key_path;    /* the audit signing key's seed (vg_keyfile.h), read at the first append */
	unsigned char *sign_sk; /* sodium_malloc'd Ed25519 secret key, NULL until read; freed at close */
	bool key_fresh;         /* this handle made the key: the head before it may be unsigned */
};

/* Forget the audit signing key (mgmt_db_close). */
void mgmt_audit_key_forget(struct mgmt_db *db);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK; -EIO (with the SQLite reason logged) on failure. */
int mgmt_tx_begin(struct mgmt_db *db);
int mgmt_tx_commit(struct mgmt_db *db);
void mgmt_tx_rollback(struct mgmt_db *db);

/* Append an audit entry inside the caller's transaction. */
int mgmt_audit_append_tx(struct mgmt_db *db, const struct mgmt_actor *who, const char *action, const char *object,
			 const char *detail, int64_t *seq);

/* After a commit that appended audit entries: move the head anchor to the last entry. */
int mgmt_audit_anchor_update(struct mgmt_db *db);

/* Add N faces scanned now to deployment ID's current hour (mgmt_deployment_add_scanned's record). */
int mgmt_scanned_hour_add(struct mgmt_db *db, int64_t id, uint64_t n);

#endif /* MGMT_INT_H */
