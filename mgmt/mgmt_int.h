/* The state library's private layout and helpers shared by its files (not for other parts of mgmt). */
#ifndef MGMT_INT_H
#define MGMT_INT_H

#include <sodium.h>
#include <sqlite3.h>
#include <stdint.h>
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

/* ---- watchlists and their enrolment crops (mgmt_watchlist.c, mgmt_watchlist_faces.c) ---------- */

#define WL_SUBJECT_BYTES 64
#define WL_FILE_MAX (1ull << 30)  /* 1.8M subjects of 128-d; read whole into vigild, so bounded well below RAM */
#define FACES_MAGIC "VGFACES\0"
#define FACES_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define SEALED_KEY_BYTES (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + FACES_KEY_BYTES)

uint32_t mgmt_le32(const uint8_t *p);
/* Write BUF to a new file at PATH (0600) through PATH.tmp, synced, then renamed; 0 or -errno. */
int mgmt_write_file(const char *path, const uint8_t *buf, size_t len);
/* Read all of FD from offset 0 into a malloc'd buffer (1 to MAX bytes; -EINVAL otherwise). */
int mgmt_read_fd(int fd, uint64_t max, uint8_t **out, size_t *len);
/* Seal the crops file open at FD into PATH under a new key, which goes wrapped into SEALED. */
int mgmt_faces_seal(int fd, const char *path, const char *id, const char *key_path, uint8_t sealed[SEALED_KEY_BYTES],
		    unsigned *n_faces, char *err, size_t errlen);
/* How many alerts still need watchlist SEAL's crops (unreviewed, or confirmed and retained). */
int64_t mgmt_alerts_needing_faces(struct mgmt_db *db, const char *seal);

/* Add N faces scanned now to deployment ID's current hour (mgmt_deployment_add_scanned's record). */
int mgmt_scanned_hour_add(struct mgmt_db *db, int64_t id, uint64_t n);

/* ---- the expected false alerts (mgmt_expected.c) ----------------------------------------------- */

/* Keep E with deployment ID's request (inside the caller's transaction). 0 or -EIO. */
int mgmt_expected_store(struct mgmt_db *db, int64_t id, const struct mgmt_expected *e);
/* E as an audit entry's JSON object (its strings are model-id and hex characters only). */
int mgmt_expected_json(const struct mgmt_expected *e, char *buf, size_t len);

#endif /* MGMT_INT_H */
