/**
 * @file mgmt.h
 * The appliance's state of record: cameras, watchlists' metadata, deployments, alerts, reviews
 * and the audit log, in one SQLite database (WAL, versioned migrations). vigild owns it; vigilctl
 * reaches it through vigild's control socket.
 *
 * Invariants this layer enforces (DESIGN.md):
 *  - 2: matching is allowed only inside a deployment that a person holding the authoriser role,
 *    other than its requester, authorised, that was started, and whose time window holds now.
 *    When the window ends the deployment ends and its watchlists are purged (the caller's purge
 *    hook runs before the state changes).
 *  - 4: every change of state is an audit entry, written in the same transaction as the change,
 *    chained by BLAKE2b-256 (libsodium's generichash) to the entry before it. The chain's head is
 *    also anchored in a file beside the database, so that cutting entries off the end is found
 *    too, and that head is signed (Ed25519) with the appliance's audit key on every append, so
 *    that someone who can rewrite the database and the head file still cannot rewrite history
 *    without the key. mgmt_audit_verify() finds any edited, deleted, inserted or reordered entry
 *    and a head whose signature does not hold; against a public key an auditor pinned, it also
 *    finds a key that was replaced.
 *
 * Identities: an actor is a person (or vigild itself) with a uid and a set of roles; vigild maps
 * SO_PEERCRED uids to actors from its config.
 *
 * This is a library of state, not of transport: no JSON, sockets or threads in its API. Beside it
 * (mgmt/ctl: the control socket and its action table; mgmt/daemon: vigild's loop; mgmt/pipeline:
 * the analysis pipeline) every part changes state only through these calls.
 *
 * Threads: a struct mgmt_db is used by one thread at a time (SQLite's connection is not shared);
 * a thread that needs the state opens its own handle on the same file (WAL lets them read while
 * another writes). vigild's loop owns one, the analysis thread of `vigild run` another.
 */
#ifndef MGMT_H
#define MGMT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vg_conf.h"

enum mgmt_role {
	MGMT_ROLE_ADMIN = 1 << 0,      /* cameras, network, updates, configuration */
	MGMT_ROLE_AUTHORISER = 1 << 1, /* authorises deployments */
	MGMT_ROLE_OPERATOR = 1 << 2,   /* reviews alerts, starts and stops authorised deployments */
	MGMT_ROLE_AUDITOR = 1 << 3,    /* reads and verifies the audit log */
};

struct mgmt_actor {
	const char *name; /* as configured, e.g. "insp.jones" */
	uint32_t uid;
	unsigned roles;   /* enum mgmt_role bits */
};

struct mgmt_db;
struct match_calib;

/**
 * Open (creating if need be) the database at PATH and bring its schema to the current version.
 * The audit head anchor lives at PATH with "-audit-head" appended, the audit signing key at PATH
 * with "-audit.key" (a 32-byte Ed25519 seed, mode 0400, made at the first append; the private
 * key never enters the database or a log). Returns 0, or -errno with a one-line reason in ERR
 * (-EPROTO: the file's schema is newer than this program).
 */
int mgmt_db_open(struct mgmt_db **out, const char *path, char *err, size_t errlen);
void mgmt_db_close(struct mgmt_db **db); /* sets *db = NULL */
int mgmt_db_schema_version(struct mgmt_db *db);

/* ---- audit ---------------------------------------------------------------------------------- */

#define MGMT_AUDIT_HASH_BYTES 32

/**
 * Append an entry: who did ACTION to OBJECT, with DETAIL (JSON text, may be NULL). Fails with
 * -EINVAL on missing fields; the entry's sequence number is written to *SEQ if SEQ is not NULL.
 * Callers that change state use the mgmt_* calls below, which audit for them.
 */
int mgmt_audit_append(struct mgmt_db *db, const struct mgmt_actor *who, const char *action, const char *object,
		      const char *detail, int64_t *seq /* OUT */);

#define MGMT_AUDIT_KEY_BYTES 32 /* an Ed25519 public key */
#define MGMT_AUDIT_SIG_BYTES 64 /* an Ed25519 signature */

/*
 * The chain's head as anchored: what is signed is the ASCII text "vigil-audit-head-v1 SEQ HASH"
 * (SEQ in decimal, HASH the entry's hash in lower-case hex, no newline), so that an auditor can
 * check it offline with openssl alone (vigilctl(1) "AUDIT EXPORT").
 */
enum mgmt_audit_head_state {
	MGMT_AUDIT_HEAD_NONE = 0, /* no head yet: the log is empty */
	MGMT_AUDIT_HEAD_UNSIGNED, /* an anchor written before heads were signed; signed at the next append */
	MGMT_AUDIT_HEAD_SIGNED,   /* signed; whether the signature holds is verify's to say */
};

struct mgmt_audit_head {
	enum mgmt_audit_head_state state;
	int64_t seq;
	char hash[2 * MGMT_AUDIT_HASH_BYTES + 1];             /* hex */
	char public_key[2 * MGMT_AUDIT_KEY_BYTES + 1];       /* hex, as the anchor names it; "" unsigned */
	char signature[2 * MGMT_AUDIT_SIG_BYTES + 1];        /* hex; "" unsigned */
	char message[2 * MGMT_AUDIT_HASH_BYTES + 48];        /* the signed text */
};

/**
 * Read the anchored head (not checked against the chain: verify does that). Returns 0 (state NONE
 * where there is no anchor), -EBADMSG if the anchor file is unreadable, or -errno.
 */
int mgmt_audit_head_get(struct mgmt_db *db, struct mgmt_audit_head *head /* OUT */);

/**
 * Check SIGNATURE_HEX over the head (SEQ, HASH_HEX) under PUBLIC_KEY_HEX, with nothing but the
 * arguments (an export checked offline). Returns 0, -EINVAL on malformed hex, -EBADMSG if the
 * signature does not hold.
 */
int mgmt_audit_head_check(int64_t seq, const char *hash_hex, const char *public_key_hex, const char *signature_hex);

struct mgmt_audit_report {
	int64_t entries;       /* entries checked */
	int64_t first_bad_seq; /* 0 when the chain is intact */
	char reason[192];      /* one line: what is wrong at first_bad_seq */
	struct mgmt_audit_head head;                   /* as anchored */
	bool head_signed;                              /* the head's signature holds under public_key */
	char public_key[2 * MGMT_AUDIT_KEY_BYTES + 1]; /* hex: this appliance's audit key ("" if none yet) */
};

/**
 * Walk the whole chain and check the signed head. Returns 0 (intact; an unsigned head from before
 * signing returns 0 with head.state UNSIGNED and head_signed false, for the caller to report),
 * -EBADMSG (broken: see REPORT; first_bad_seq is the head's seq when it is the signature or the
 * key that fails), or another -errno. With EXPECTED_KEY (MGMT_AUDIT_KEY_BYTES, an auditor's
 * pinned key), the appliance's key must be that key and the head must be signed.
 */
int mgmt_audit_verify_key(struct mgmt_db *db, const unsigned char *expected_key,
			  struct mgmt_audit_report *report /* OUT */);
/* mgmt_audit_verify_key(DB, NULL, REPORT) */
int mgmt_audit_verify(struct mgmt_db *db, struct mgmt_audit_report *report /* OUT */);

/** The sequence number of the chain's last entry (its length), or -EIO. */
int64_t mgmt_audit_count(struct mgmt_db *db);

/* One entry of the chain as stored; the strings live for the length of the callback only. */
struct mgmt_audit_entry {
	int64_t seq, ts_ns, uid;
	const char *actor, *action, *object; /* NULL only where the database was edited behind vigild */
	const char *detail;                  /* JSON text, or NULL */
	size_t text_bytes;                   /* of actor, object and detail together */
	char prev_hash[2 * MGMT_AUDIT_HASH_BYTES + 1], hash[2 * MGMT_AUDIT_HASH_BYTES + 1]; /* hex; a hash of the
		wrong length is given as it is, for an offline check to find */
};

/**
 * The hash of entry E chained to PREV, as verify computes it (E's own hash fields are not read):
 * for checking an export offline with nothing but the export.
 */
void mgmt_audit_entry_hash(const unsigned char prev[MGMT_AUDIT_HASH_BYTES], const struct mgmt_audit_entry *e,
			   unsigned char out[MGMT_AUDIT_HASH_BYTES] /* OUT */);

/**
 * Call FN with each entry after sequence number SINCE, in order, at most MAX of them; FN returns
 * false to stop early. Returns 1 if FN stopped it, 0 when the entries ran out, or -EIO.
 */
int mgmt_audit_list(struct mgmt_db *db, int64_t since, size_t max,
		    bool (*fn)(void *arg, const struct mgmt_audit_entry *e), void *arg);

/* ---- deployments ---------------------------------------------------------------------------- */

enum mgmt_use_case {
	MGMT_USE_CRIME_HOTSPOT = 0,
	MGMT_USE_PROTECTIVE_SECURITY,
	MGMT_USE_SOUGHT_PERSONS, /* intelligence-led search for sought persons */
};

enum mgmt_deployment_state {
	MGMT_DEPLOYMENT_REQUESTED = 0,
	MGMT_DEPLOYMENT_AUTHORISED,
	MGMT_DEPLOYMENT_ACTIVE,
	MGMT_DEPLOYMENT_ENDED,
	MGMT_DEPLOYMENT_REFUSED,
	MGMT_DEPLOYMENT_WITHDRAWN, /* by its requester, before it started */
};

struct mgmt_deployment_request {
	const char *name;
	enum mgmt_use_case use_case;
	const char *location;
	int64_t start_s, end_s; /* Unix seconds, start < end */
	const char *justification;
	const char *const *watchlists; /* ids of watchlists vigild holds, at least one */
	const char *const *seals;      /* each one's seal (sha256 hex), as the requester saw it */
	size_t n_watchlists;
	/* The time rules the request is judged by (mgmt_deployment_times_check). */
	int64_t now_s;                 /* when it is requested (0: the wall clock) */
	int64_t max_window_s;          /* the longest window one authorisation may cover (0: the default) */
	/* The false alerts it should be expected to raise (mgmt_expected_compute), and the policy. */
	const char *model_id;          /* the model vigild runs: each watchlist must have been enrolled
					  with it (NULL: not checked) */
	const struct match_calib *calib; /* that model's calibration (match_calib.h); NULL: it has none */
	double max_expected_per_1000;  /* refuse a request whose expected false alerts per 1,000 faces
					  may exceed this (the interval's upper end); 0: no limit */
};

/*
 * The false alerts a deployment should be expected to raise, from the model's calibration, each
 * watchlist's size and threshold: shown to the requester and the authoriser before anyone decides,
 * audited with the request and the authorisation, and published beside the measured rate.
 */
struct mgmt_expected {
	bool stated;                /* false: the model has no calibration, so nothing can be stated */
	double per_1000, low, high; /* false alerts per 1,000 faces of people not on the watchlists: the
				       estimate and its 95% interval */
	int bound;                  /* 0: estimated; -1: the calibration shows only "at most HIGH";
				       +1: only "at least LOW" */
	double faces_per_hour;      /* the cameras' measured face rate (busy hours of the last 30 days);
				       0: none measured yet */
	char calibration_seal[65];  /* the calibration file's sha256 */
	char model[32];
	char statement[400];        /* what the figure rests on and what it cannot support, in words */
};

/*
 * The expectation for watchlists of SUBJECTS[i] people at THRESHOLDS[i] (the matcher's metric;
 * N of them) under CALIB (NULL: not stated): a passer-by raises a false alert when any watchlist
 * has a false match, 1 - prod_i (1 - FMR(t_i))^N_i. FACES_PER_HOUR is copied.
 */
void mgmt_expected_compute(const struct match_calib *calib, const uint64_t *subjects, const double *thresholds,
			   size_t n, double faces_per_hour, struct mgmt_expected *out /* OUT */);

/** The face rate the appliance measured: faces per busy hour over the 30 days before NOW_S (0: none). */
double mgmt_measured_faces_per_hour(struct mgmt_db *db, int64_t now_s);

/** Deployment ID's expectation as its request stated it (stated false for one made before). */
int mgmt_deployment_expected(struct mgmt_db *db, int64_t id, struct mgmt_expected *out /* OUT */);

/** One line for people: "0.42 (0.31 to 0.55) false alerts per 1,000 faces; about 3.1 an hour at ...". */
void mgmt_expected_text(const struct mgmt_expected *e, char *buf, size_t len);

/*
 * Times a deployment may have: START at most MGMT_DEPLOYMENT_PAST_MAX_S before NOW_S (a request
 * does not authorise the past), END after START, END - START at most MAX_WINDOW_S (0: the
 * default, MGMT_DEPLOYMENT_WINDOW_DEFAULT_S; a permanent site renews its authorisation), and END
 * within MGMT_DEPLOYMENT_FUTURE_MAX_S of NOW_S. 0, or -ERANGE with a one-line reason naming the limit.
 */
#define MGMT_DEPLOYMENT_WATCHLISTS_MAX 64 /* watchlists one deployment may name */
#define MGMT_DEPLOYMENT_PAST_MAX_S (24 * 3600)
#define MGMT_DEPLOYMENT_WINDOW_DEFAULT_S (31 * 24 * 3600)
#define MGMT_DEPLOYMENT_WINDOW_MAX_S (366 * 24 * 3600)
#define MGMT_DEPLOYMENT_FUTURE_MAX_S (2 * 366 * 24 * 3600)
int mgmt_deployment_times_check(int64_t start_s, int64_t end_s, int64_t now_s, int64_t max_window_s, char *err,
				size_t errlen);

/*
 * Text that a person typed and others will read (names, locations, notes, reasons): refused when
 * empty, longer than MAX bytes, not UTF-8, or holding a control character (MULTILINE allows a
 * newline and a tab): the records never carry a terminal escape. Returns 0 or -EINVAL with a
 * one-line reason naming FIELD.
 */
int mgmt_text_check(const char *field, const char *s, size_t max, bool multiline, char *err, size_t errlen);

struct mgmt_deployment {
	int64_t id;
	char name[128];
	enum mgmt_use_case use_case;
	enum mgmt_deployment_state state;
	char location[256];
	int64_t start_s, end_s;
	char requested_by[64];
	char authorised_by[64]; /* empty until authorised */
	char justification[4097];   /* the requester's, shown to the authoriser */
	char decision_reasons[4097]; /* the authoriser's (or the requester's, for a withdrawal); "" until then */
};

struct mgmt_watchlist;

/** Called with each watchlist id of a deployment that ends, before it is marked ended. */
typedef int mgmt_purge_fn(void *arg, int64_t deployment_id, const char *watchlist_id);

/** Create a deployment request (any role but auditor). *ID gets its id. -EINVAL with ERR on bad fields. */
int mgmt_deployment_create(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_deployment_request *req,
			   int64_t *id /* OUT */, char *err, size_t errlen);

/**
 * Authorise (APPROVE true) or refuse a requested deployment, with the authoriser's REASONS.
 * -EPERM: WHO lacks the authoriser role or is the requester; -EALREADY: not in the requested state.
 */
int mgmt_deployment_authorise(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, bool approve,
			      const char *reasons, char *err, size_t errlen);

/**
 * Withdraw a deployment its requester (WHO) no longer wants, with REASON, while it is requested or
 * authorised and not started. -EPERM for anyone but the requester; -EALREADY otherwise. Audited.
 */
int mgmt_deployment_withdraw(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *reason,
			     char *err, size_t errlen);

/**
 * Whether SEALS (N of them, any order) are exactly the seals deployment ID's request bound: 0, or
 * -ESTALE with a one-line reason (the authoriser was shown something else).
 */
int mgmt_deployment_seals_check(struct mgmt_db *db, int64_t id, const char *const *seals, size_t n, char *err,
				size_t errlen);

/** Start an authorised deployment at NOW_S (operator or authoriser). -ETIME outside its window. */
int mgmt_deployment_start(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, int64_t now_s, char *err,
			  size_t errlen);

/** End a deployment now, purging its watchlists through PURGE first (may be NULL in tests). */
int mgmt_deployment_stop(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *reason,
			 mgmt_purge_fn *purge, void *purge_arg, char *err, size_t errlen);

/** End, and purge, every active deployment whose window closed by NOW_S. Returns how many ended. */
int mgmt_deployment_expire(struct mgmt_db *db, int64_t now_s, mgmt_purge_fn *purge, void *purge_arg);

/** 1 if matching may run for deployment ID at NOW_S (invariant 2), 0 if not, -errno on error. */
int mgmt_deployment_matching_allowed(struct mgmt_db *db, int64_t id, int64_t now_s);

int mgmt_deployment_get(struct mgmt_db *db, int64_t id, struct mgmt_deployment *out /* OUT */);

/** How many deployments are in STATE. -EIO on a database error. */
int64_t mgmt_deployment_count(struct mgmt_db *db, enum mgmt_deployment_state state);

/** The active deployment that matching may run for at NOW_S (the oldest, if several), or 0. */
int64_t mgmt_deployment_matching_now(struct mgmt_db *db, int64_t now_s);

/**
 * Call FN with each watchlist record deployment ID names, by id, and the seal its authorisation
 * bound (BOUND_SEAL; "" for a deployment made before seals were bound). Returns how many, or -EIO.
 */
int mgmt_deployment_watchlists(struct mgmt_db *db, int64_t id,
			       void (*fn)(void *arg, const struct mgmt_watchlist *w, const char *bound_seal), void *arg);

/** Call FN with each deployment, newest first, at most MAX. Returns how many, or -EIO. */
int mgmt_deployment_list(struct mgmt_db *db, size_t max, void (*fn)(void *arg, const struct mgmt_deployment *d),
			 void *arg);

/** Add N faces scanned to deployment ID's count (the public record's "faces scanned"). */
int mgmt_deployment_add_scanned(struct mgmt_db *db, int64_t id, uint64_t n);

/* ---- alerts (invariant 3: every alert waits for a person's decision) -------------------------- */

enum mgmt_alert_outcome {
	MGMT_ALERT_UNREVIEWED = 0,
	MGMT_ALERT_CONFIRMED,
	MGMT_ALERT_REJECTED, /* a false alert */
};

struct mgmt_alert {
	int64_t id;          /* set by mgmt_alert_raise() */
	int64_t deployment;
	char camera[32];
	int64_t pts;         /* 90 kHz on the camera's clock */
	uint64_t track;
	char subject[65];
	char watchlist[65];
	char watchlist_seal[65]; /* the seal of the very watchlist it matched ("" before seals were recorded) */
	char metric[16];
	double value, threshold;
	int32_t box[4];
	char evidence[128];  /* where the store keeps the crop; "" when it could not be saved */
	enum mgmt_alert_outcome outcome;
	char reviewed_by[64];
	char note[512];
};

/**
 * Record an alert (called once its evidence is durable, or known unsaved), audited as raised by
 * WHO. Refused (-EPERM) unless the deployment is still active and its authorisation bound
 * ALERT->watchlist by ALERT->watchlist_seal. ALERT->id gets the alert's id.
 */
int mgmt_alert_raise(struct mgmt_db *db, const struct mgmt_actor *who, struct mgmt_alert *alert);

/**
 * A person's decision (operator role): confirm or reject, with a note. -EPERM without the role,
 * -EALREADY if already reviewed, -ENOENT. Audited.
 */
int mgmt_alert_review(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, bool confirm, const char *note,
		      char *err, size_t errlen);
int mgmt_alert_get(struct mgmt_db *db, int64_t id, struct mgmt_alert *out /* OUT */);

/**
 * Call FN with at most MAX alerts: newest first, or with UNREVIEWED_ONLY those awaiting a
 * decision, oldest first (the order a reviewer works in). Returns how many, or -EIO.
 */
int mgmt_alert_list(struct mgmt_db *db, bool unreviewed_only, size_t max,
		    void (*fn)(void *arg, const struct mgmt_alert *a), void *arg);

/**
 * Point an unreviewed alert at a better crop of the same track (durable in the store already).
 * -EALREADY once reviewed (the reviewer's evidence never changes under them), -ENOENT. Audited.
 */
int mgmt_alert_set_evidence(struct mgmt_db *db, const struct mgmt_actor *who, int64_t id, const char *evidence);

/** The public record for a deployment: faces scanned, alerts and their outcomes. */
struct mgmt_transparency {
	uint64_t faces_scanned, alerts, confirmed, rejected, unreviewed;
};
int mgmt_deployment_transparency(struct mgmt_db *db, int64_t id, struct mgmt_transparency *out /* OUT */);

/** One hour of a deployment's public record: [hour_s, hour_s + 3600). */
struct mgmt_transparency_hour {
	int64_t hour_s;
	uint64_t faces_scanned, alerts, confirmed, rejected, unreviewed;
};
/**
 * The public record hour by hour over deployment ID's window (alerts by when they were raised),
 * into OUT (CAP hours, the window's first hour first). Returns the number of hours written, or
 * -ENOENT/-EIO. A window longer than CAP hours gets only its first CAP hours.
 */
int mgmt_deployment_transparency_hours(struct mgmt_db *db, int64_t id, struct mgmt_transparency_hour *out, size_t cap);

/*
 * Review outcomes and the evidence store: a review is the database's at once; the store's
 * retention outcome (store_outcome_set) follows whenever the store can be opened, since `vigild
 * run` holds it (flock) for the length of a run. mgmt_alert_outcome_pending() lists what is still
 * to be applied; whoever opens the store applies them and marks each one done.
 */
struct mgmt_alert_outcome_todo {
	int64_t alert;
	enum mgmt_alert_outcome outcome;
	char evidence[128];
};
/** Up to CAP reviewed alerts whose store outcome is not applied yet. Returns how many, or -EIO. */
int mgmt_alert_outcome_pending(struct mgmt_db *db, struct mgmt_alert_outcome_todo *out, size_t cap);
/** Mark alert ID's store outcome applied (or moot: no evidence saved). */
int mgmt_alert_outcome_applied(struct mgmt_db *db, int64_t id);

/* ---- watchlists: the sealed matcher files a deployment is authorised with ---------------------- */

/*
 * A watchlist is registered (mgmt_watchlist_add) from a matcher file (match.h's format) handed
 * over as an open descriptor; vigild copies it into its custody (<state_dir>/watchlists/, 0600)
 * and records its id (the file's watchlist id, in decimal: what deployments and alerts name),
 * name, threshold (the file's: the matcher judges by it), subject count and sha256 seal. An
 * optional second file holds each subject's aligned enrolment crop, which vigild encrypts
 * (XChaCha20-Poly1305 under a per-watchlist key sealed by the appliance key) for reviewers to
 * compare against (mgmt_watchlist_face_get). Removing or purging overwrites and unlinks both files
 * and keeps the record; a watchlist that an authorised or active deployment names cannot be removed.
 */
enum mgmt_watchlist_state {
	MGMT_WATCHLIST_LIVE = 0,
	MGMT_WATCHLIST_REMOVED, /* by a person */
	MGMT_WATCHLIST_PURGED,  /* its deployment ended, or purged by a person */
};

struct mgmt_watchlist {
	char id[16];
	char model[32];       /* the model it was enrolled with (from the file); "" if not known */
	char name[128];
	double threshold;
	uint64_t subjects;
	char sha256[65];      /* hex of the file's seal */
	char path[512];
	bool has_faces;
	char created_by[64];
	int64_t created_ns;
	enum mgmt_watchlist_state state;
	char ended_by[64];    /* "" while live */
	int64_t ended_ns;
	char end_reason[256];
};

/*
 * The enrolment crops file vigilctl hands over with a watchlist (plain, in a memfd, never on
 * disk): repeated { u16 subject length, subject, u32 JPEG length, JPEG }, little-endian.
 */
#define MGMT_WATCHLIST_FACE_MAX (4u << 20)

/*
 * The thresholds a watchlist may carry, by its file's metric (match.h): an L2 distance in
 * (0, 2], since unit-length descriptors lie at most 2 apart; a cosine similarity in (0, 1]. Above
 * that every face would match. vigilctl checks the same bounds before it asks.
 */
#define MGMT_WATCHLIST_L2_MAX 2.0
#define MGMT_WATCHLIST_COSINE_MAX 1.0

/**
 * Register the watchlist file open at FD (read from offset 0) with NAME, and the enrolment crops
 * at FACES_FD (-1: none). THRESHOLD > 0 must equal the file's. *OUT gets the record. -EINVAL with
 * ERR for a bad file or argument, -EEXIST for an id already registered (ever), -EPERM without the
 * role. Audited.
 */
int mgmt_watchlist_add(struct mgmt_db *db, const struct mgmt_actor *who, int fd, int faces_fd, const char *name,
		       double threshold, struct mgmt_watchlist *out /* OUT */, char *err, size_t errlen);
int mgmt_watchlist_get(struct mgmt_db *db, const char *id, struct mgmt_watchlist *out /* OUT */);
/** Whether ID is a well-formed watchlist id (decimal, as the file's). */
bool mgmt_watchlist_id_valid(const char *id);
/** The ids of the deployments that name watchlist ID (at most CAP, ascending). Returns how many, or -EIO. */
int mgmt_watchlist_deployments(struct mgmt_db *db, const char *id, int64_t *ids /* OUT */, size_t cap);
/** Live watchlists that no authorised or active deployment names (at most CAP, by id). How many, or -EIO. */
int mgmt_watchlist_unused(struct mgmt_db *db, char (*ids)[16] /* OUT */, size_t cap);
/** Call FN with each watchlist record, newest first, at most MAX. Returns how many, or -EIO. */
int mgmt_watchlist_list(struct mgmt_db *db, size_t max, void (*fn)(void *arg, const struct mgmt_watchlist *w),
			void *arg);
/*
 * May a new deployment name watchlist ID with SEAL? Only a watchlist vigild holds (-ENOENT), live
 * (-ESTALE), whose seal is SEAL (-EBADMSG: not the watchlist the requester saw), and in no other
 * requested, authorised or active deployment (-EBUSY). 0 with its record in *W, or -errno with ERR.
 */
int mgmt_watchlist_check_for_deployment(struct mgmt_db *db, const char *id, const char *seal,
					struct mgmt_watchlist *w /* OUT */, char *err, size_t errlen);
/**
 * Call FN with each subject id of live watchlist ID's file (the first MAX), never a descriptor.
 * Returns the file's subject count, -ENOENT, -ESTALE (removed or purged), -EBADMSG (the file no
 * longer matches its seal).
 */
int mgmt_watchlist_subjects(struct mgmt_db *db, const char *id, size_t max, void (*fn)(void *arg, const char *subject),
			    void *arg);
/**
 * Delete watchlist ID's files (overwrite, then unlink) and mark it removed (PURGE false) or
 * purged, with REASON. -EBUSY while an authorised or active deployment names it, -ESTALE if it is
 * gone already, -ENOENT. Audited.
 */
int mgmt_watchlist_remove(struct mgmt_db *db, const struct mgmt_actor *who, const char *id, bool purge,
			  const char *reason, char *err, size_t errlen);
/**
 * The purge hook vigild installs (mgmt_purge_fn; ARG is the struct mgmt_db): purges a registered,
 * live watchlist when DEPLOYMENT_ID ends, unless another authorised or active deployment still
 * names it (that one's end purges it). Unregistered ids have nothing on disk here: 0.
 */
int mgmt_watchlist_purge_hook(void *arg, int64_t deployment_id, const char *watchlist_id);
/**
 * Subject SUBJECT's enrolment crop of watchlist ID, the one sealed SEAL (an alert's watchlist_seal;
 * -ESTALE for any other, and once the crops were deleted), decrypted with the appliance key at
 * KEY_PATH, into JPEG (CAP bytes); its length in *LEN. -ENOENT (no such subject or no crops),
 * -ESTALE (purged), -EBADMSG (fails its tag), -ENOBUFS.
 */
int mgmt_watchlist_face_get(struct mgmt_db *db, const char *id, const char *seal, const char *subject,
			    const char *key_path, uint8_t *jpeg /* OUT */, size_t cap, size_t *len /* OUT */);
/**
 * Delete the enrolment crops of ended watchlists that no alert needs any more (every alert of
 * theirs reviewed, and the confirmed ones' evidence past its retention). Returns how many were
 * deleted, or -EIO. Audited per watchlist. vigild calls it periodically.
 */
int mgmt_watchlist_faces_release(struct mgmt_db *db);
const char *mgmt_watchlist_state_name(enum mgmt_watchlist_state state);

const char *mgmt_use_case_name(enum mgmt_use_case use_case);
const char *mgmt_deployment_state_name(enum mgmt_deployment_state state);

/* ---- people: who a caller is ------------------------------------------------------------------ */

/*
 * The role map, from vigild's config: "UID:NAME:ROLE[+ROLE...]" entries separated by commas, e.g.
 * "1001:admin.smith:admin,2001:sgt.alice:operator+authoriser,2004:auditor.dave:auditor".
 * Roles: admin, authoriser, operator, auditor. A uid and a name (in any case) may appear once,
 * and names beginning MGMT_RESERVED_ACTOR_PREFIX are Vigil's own ("vigild", "vigild-run",
 * "vigilctl" in the audit log): no person may take them.
 */
#define MGMT_RESERVED_ACTOR_PREFIX "vigil"
struct mgmt_people;

/** Parse SPEC (at most 4096 entries). Returns 0 or -EINVAL with a one-line reason in ERR. */
int mgmt_people_parse(struct mgmt_people **out, const char *spec, char *err, size_t errlen);
void mgmt_people_free(struct mgmt_people **people);
/** The actor for UID; -ENOENT for a uid the map does not name. OUT's name points into PEOPLE. */
int mgmt_people_lookup(const struct mgmt_people *people, uint32_t uid, struct mgmt_actor *out /* OUT */);
/**
 * A revocation in the config file over a map that outranks it (a stored vigild.people): CURRENT
 * less every role that BEFORE (the file as it was) gave and AFTER (the file now) no longer gives,
 * a uid with no role left dropped, as a spec in OUT (CAP bytes; "" when no one is left). The uids
 * that lost something go to REVOKED (at most MAX_REVOKED of them). Returns how many uids lost a
 * role, or -ENOSPC when OUT is too small.
 */
int mgmt_people_revoke(const struct mgmt_people *current, const struct mgmt_people *before,
		       const struct mgmt_people *after, char *out /* OUT */, size_t cap, uint32_t *revoked /* OUT */,
		       unsigned max_revoked);

/* ---- cameras (mgmt_camera.c) ------------------------------------------------------------------ */

/*
 * A camera's RTSP URL may carry credentials (rtsp://user:password@host/path). They are split off
 * when the camera is added and sealed (XChaCha20-Poly1305, keyed by a file beside the database,
 * "<db>-credentials.key", 0600), so the database, its dumps, the audit log, every reply and every
 * error hold the URL without them. Only vigild unseals them, to connect. The URL is read once, by
 * vg_url_split() (vg_url.h: RFC 3986 through libcurl, user name and password percent-decoded); a
 * URL that could leave a piece of a password in the public URL (an '@' after the host, a
 * credential parameter in the query string) is refused with a reason that never quotes it.
 */
#define MGMT_CAMERA_FPS_DEFAULT 10

struct mgmt_camera_add {
	const char *id;       /* 1..31 of [A-Za-z0-9._-]: how alerts and reports name it */
	const char *url;      /* rtsp://[user[:password]@]host[:port]/path, userinfo percent-encoded */
	const char *location; /* may be NULL */
	int64_t fps;          /* frames analysed per second, 1..60; 0: the default */
};

struct mgmt_camera {
	char id[32];
	char url[1024];       /* without the credentials: safe to show */
	char location[256];
	int64_t fps;
	bool has_credentials;
	char added_by[64];
	int64_t added_ns;
};

/**
 * Write URL's public form (vg_url_split(): no userinfo, no fragment, as libcurl writes it, e.g.
 * "rtsp://h" becomes "rtsp://h/") into OUT. -EINVAL (refused: vg_url.h), -ENOMEM, -ENOSPC.
 */
int mgmt_url_redact(const char *url, char *out, size_t len);

/** Add a camera (admin). Audited with the redacted URL. -EPERM, -EEXIST, -EINVAL with ERR. */
int mgmt_camera_add(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_camera_add *req, char *err,
		    size_t errlen);
/** Remove a camera (admin), its sealed credentials with it. Audited. -EPERM, -ENOENT with ERR. */
int mgmt_camera_remove(struct mgmt_db *db, const struct mgmt_actor *who, const char *id, char *err, size_t errlen);
int mgmt_camera_get(struct mgmt_db *db, const char *id, struct mgmt_camera *out /* OUT */);
enum mgmt_camera_order {
	MGMT_CAMERAS_BY_ID = 0,
	MGMT_CAMERAS_BY_ADDED, /* the order the live pipeline numbers them in */
};
/** Call FN with each camera in ORDER, at most MAX. Returns how many, or -EIO. */
int mgmt_camera_list(struct mgmt_db *db, enum mgmt_camera_order order, size_t max,
		     void (*fn)(void *arg, const struct mgmt_camera *c), void *arg);
/** Whether ID is a well-formed camera id (1..31 of [A-Za-z0-9._-]). */
bool mgmt_camera_id_valid(const char *id);

/**
 * Unseal camera ID's credentials into USER and PASSWORD (128 bytes each; "" when it has none),
 * for connecting to it. The caller wipes both (sodium_memzero) once connected. -ENOENT, -EBADMSG
 * (the sealed credentials do not open with this appliance's key), -errno.
 */
#define MGMT_CREDENTIAL_MAX 128 /* bytes of a camera's user name or password, with its NUL */
int mgmt_camera_credentials(struct mgmt_db *db, const char *id, char user[MGMT_CREDENTIAL_MAX] /* OUT */,
			    char password[MGMT_CREDENTIAL_MAX] /* OUT */);

/** What a short look at a camera's stream found (camera.probe). */
struct mgmt_probe_result {
	char codec[16];       /* "h264", "h265", "mjpeg" */
	unsigned streams;     /* video streams the camera describes; the first is probed */
	int width, height;    /* of the first decoded picture; 0 when none decoded */
	double fps;           /* from the RTP timestamps of the access units */
	uint64_t packets, lost, reordered, duplicates;
	uint64_t frames;      /* pictures decoded */
	double seconds;       /* how long it listened */
};

/**
 * Connect to URL (without credentials) as USER/PASSWORD ("" for none), receive for SECONDS and
 * fill OUT. Returns 0, or -errno with a one-line reason in ERR that never holds the credentials:
 * it is built from URL's host:port and the request, never from USER or PASSWORD (camera.probe
 * passes it on and audits it as it is).
 * vigild serve lends the dataplane's (vigild_probe.c).
 */
typedef int mgmt_probe_fn(const char *url, const char *user, const char *password, unsigned seconds,
			  struct mgmt_probe_result *out /* OUT */, char *err, size_t errlen);

/* ---- settings and retention (mgmt_settings.c) ------------------------------------------------- */

/*
 * `vigilctl config set` changes a run-time-mutable setting of vigild's config tables and keeps it
 * in the database's settings table, which outranks the config file at start and at every reload.
 */

/**
 * Apply the stored settings over SET's objects (after the file was read). A stored setting that
 * is unknown, no longer mutable or no longer valid is skipped with a warning, never fatal.
 * Returns the number applied, or -errno with ERR.
 */
int mgmt_settings_load(struct mgmt_db *db, const struct vg_conf_set *set, char *err, size_t errlen);

/**
 * vigild's side of config.set: NAME is a mutable setting of the live set; parse VALUE into the
 * running state and apply it, all or nothing. WHO is the caller (a people map must keep them an
 * admin). Returns 0, or -errno with a one-line reason in ERR when nothing changed.
 */
typedef int mgmt_conf_apply_fn(void *arg, const struct mgmt_actor *who, const char *name, const char *value,
			       char *err, size_t errlen);

/** Whether setting NAME has a value stored by `vigilctl config set` (it outranks the file). */
bool mgmt_setting_stored(struct mgmt_db *db, const char *name);

/**
 * config.set's state change (admin): check VALUE for setting NAME of the live SET (mutable, not
 * secret, valid), then store it, audit it with the old and new values, and apply it through
 * APPLY, all in one transaction: a value APPLY refuses leaves no row and no entry, and a commit
 * that fails puts the old value back. The old value's text goes to OLD (OLDLEN bytes). Returns 0,
 * or -errno with a one-line reason in ERR (-ENOENT unknown setting, -EPERM start-up only or secret).
 */
int mgmt_setting_set(struct mgmt_db *db, const struct mgmt_actor *who, const struct vg_conf_set *set,
		     const char *name, const char *value, mgmt_conf_apply_fn *apply, void *apply_arg,
		     char *old /* OUT */, size_t oldlen, char *err, size_t errlen);

/** Evidence retention per review outcome, in seconds (the store's retain_*_s). */
struct mgmt_retention {
	uint64_t confirmed_s, rejected_s, unreviewed_s;
};

/**
 * The retention periods set with `vigilctl retention set`, or the store's defaults (31 days
 * confirmed, 24 hours rejected and unreviewed) where none was set. What an evidence store's
 * owner passes as store_conf.retain_*_s: never 0 (which the store reads as its default), so a
 * period set to 0 days comes back as 1 s.
 */
int mgmt_retention_get(struct mgmt_db *db, struct mgmt_retention *out /* OUT */);
/** Set all three (admin), audited with the old and new values. -EPERM, -ERANGE with ERR. */
int mgmt_retention_set(struct mgmt_db *db, const struct mgmt_actor *who, const struct mgmt_retention *r, char *err,
		       size_t errlen);

/* ---- hooks vigild lends its parts ------------------------------------------------------------ */

/** Called after a review is recorded, to apply its outcome to the evidence store. */
typedef void mgmt_outcome_fn(void *arg, struct mgmt_db *db);

#endif /* MGMT_H */
