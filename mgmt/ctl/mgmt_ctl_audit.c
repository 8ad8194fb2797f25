/*
 * The audit actions of the control socket: audit.list, audit.verify, and audit.export: the chain
 * with every field its hashes cover, so that someone holding only the export can check it offline
 * (vigilctl(1) "AUDIT EXPORT" gives the recipe). An export page is at most 1000 entries and about
 * 512 KiB, under vigilctl's 1 MiB reply cap; the first page (since 0) first audits the export
 * itself, so the export ends with its own record. Each page also carries the chain's signed head
 * as anchored before the page was read, so that the last page's head covers what was listed.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "mgmt_ctl_int.h"
#include "vg_base.h"

#define AUDIT_LIST_MAX 1000
#define EXPORT_PAGE_ENTRIES 1000
#define EXPORT_PAGE_BYTES (512u << 10)

static const char *head_state_name(enum mgmt_audit_head_state s)
{
	return s == MGMT_AUDIT_HEAD_SIGNED ? "signed" : s == MGMT_AUDIT_HEAD_UNSIGNED ? "unsigned" : "none";
}

/* The head as an export's last record and verify's reply show it; NULL fields where unsigned. */
static json_t *head_json(const struct mgmt_audit_head *h)
{
	bool sig = h->state == MGMT_AUDIT_HEAD_SIGNED;

	return json_pack("{s:s, s:I, s:s?, s:s, s:s?, s:s?, s:s?}", "state", head_state_name(h->state), "seq",
			 (json_int_t)h->seq, "hash", h->state ? h->hash : NULL, "algorithm", "ed25519", "public_key",
			 sig ? h->public_key : NULL, "signature", sig ? h->signature : NULL, "message",
			 h->state ? h->message : NULL);
}

/* audit.verify {public_key?}: with an auditor's pinned key (hex), that key is the one that counts. */
int mgmt_act_audit_verify(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			    char *err, size_t errlen)
{
	unsigned char pinned[MGMT_AUDIT_KEY_BYTES];
	struct mgmt_audit_report r;
	const char *pin = NULL;
	size_t n = 0;
	int rc;

	if ((rc = mgmt_arg_string(args, "public_key", false, &pin, err, errlen)) < 0)
		return rc;
	if (pin && (sodium_hex2bin(pinned, sizeof(pinned), pin, strlen(pin), NULL, &n, NULL) != 0 ||
		    n != sizeof(pinned) || strlen(pin) != 2 * sizeof(pinned)))
		return vg_errf(err, errlen, -EINVAL, "argument 'public_key' must be %d hex digits",
			       2 * MGMT_AUDIT_KEY_BYTES);
	rc = mgmt_audit_verify_key(ctl->db, pin ? pinned : NULL, &r);
	if (rc < 0 && rc != -EBADMSG)
		return vg_errf(err, errlen, rc, "cannot read the audit log");
	*result = json_pack("{s:b, s:I, s:I, s:s, s:b, s:s?, s:o}", "intact", rc == 0, "entries", (json_int_t)r.entries,
			    "first_bad", (json_int_t)r.first_bad_seq, "reason", r.reason, "head_signed", r.head_signed,
			    "public_key", r.public_key[0] ? r.public_key : NULL, "head", head_json(&r.head));
	return 0;
}

static bool add_entry(void *arg, const struct mgmt_audit_entry *e)
{
	json_array_append_new(arg, json_pack("{s:I, s:I, s:s, s:I, s:s, s:s, s:s?}", "seq", (json_int_t)e->seq, "ts_ns",
					     (json_int_t)e->ts_ns, "actor", e->actor, "uid", (json_int_t)e->uid, "action",
					     e->action, "object", e->object, "detail", e->detail));
	return true;
}

int mgmt_act_audit_list(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	json_t *since = json_object_get(args, "since"), *list = json_array();

	if (since && !json_is_integer(since)) {
		json_decref(list);
		return vg_errf(err, errlen, -EINVAL, "argument 'since' must be an integer");
	}
	if (mgmt_audit_list(ctl->db, since ? json_integer_value(since) : 0, AUDIT_LIST_MAX, add_entry, list) < 0) {
		json_decref(list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o}", "entries", list);
	return 0;
}

static void iso_time(int64_t ts_ns, char *buf, size_t len)
{
	time_t s = (time_t)(ts_ns / 1000000000);
	struct tm tm;
	char day[32];

	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", gmtime_r(&s, &tm));
	snprintf(buf, len, "%s.%09" PRId64 "Z", day, ts_ns % 1000000000);
}

struct export_page {
	json_t *list;
	size_t bytes;
	int64_t last;
};

static bool export_entry(void *arg, const struct mgmt_audit_entry *e)
{
	struct export_page *page = arg;
	char when[48];

	if (json_array_size(page->list) == EXPORT_PAGE_ENTRIES || page->bytes > EXPORT_PAGE_BYTES)
		return false; /* more to come: the caller asks again from page->last */
	iso_time(e->ts_ns, when, sizeof(when));
	json_t *j = json_pack("{s:I, s:I, s:s, s:s, s:I, s:s, s:s, s:s?, s:s, s:s}", "seq", (json_int_t)e->seq, "ts_ns",
			      (json_int_t)e->ts_ns, "time", when, "actor", e->actor, "uid", (json_int_t)e->uid, "action",
			      e->action, "object", e->object, "detail", e->detail, "prev_hash", e->prev_hash, "hash",
			      e->hash);
	if (!j)
		return true; /* a NULL where the schema forbids one: verify names the entry */
	/* Escaping can at most double a field (\uXXXX is rare in what vigild writes). */
	page->bytes += 400 + 2 * e->text_bytes;
	json_array_append_new(page->list, j);
	page->last = e->seq;
	return true;
}

int mgmt_act_audit_export(struct mgmt_ctl *ctl, const struct mgmt_actor *who, json_t *args, json_t **result,
			  char *err, size_t errlen)
{
	struct export_page page = { 0 };
	struct mgmt_audit_head head;
	int64_t since = 0;
	int rc;

	if ((rc = mgmt_arg_int(args, "since", false, &since, err, errlen)) < 0)
		return rc;
	if (since < 0)
		return vg_errf(err, errlen, -EINVAL, "argument 'since' must be 0 or more");
	if (since == 0 && (rc = mgmt_audit_append(ctl->db, who, "audit.export", "audit", NULL, NULL)) < 0)
		return vg_errf(err, errlen, rc, "cannot audit the export");
	/* The head before the entries: everything it covers is in the listing that follows. */
	if (mgmt_audit_head_get(ctl->db, &head) < 0)
		return vg_errf(err, errlen, -EBADMSG, "the audit head anchor is unreadable: run audit verify");
	page.list = json_array();
	rc = mgmt_audit_list(ctl->db, since, EXPORT_PAGE_ENTRIES + 1, export_entry, &page);
	if (rc < 0) {
		json_decref(page.list);
		return vg_errf(err, errlen, -EIO, "database error");
	}
	*result = json_pack("{s:o, s:b, s:I, s:o}", "entries", page.list, "more", rc == 1, "last", (json_int_t)page.last,
			    "head", head_json(&head));
	return 0;
}
