/*
 * vigilctl audit list|verify|export: the hash-chained audit log (mgmt_ctl_audit.c), over the
 * control socket. verify exits 1 naming the first entry that breaks the chain or a head whose
 * signature does not hold, and prints the appliance's public key for an auditor to pin; export
 * writes the whole chain as JSON lines ending with the signed head; `verify --export FILE` checks
 * such a file offline, without vigild (vigilctl(1) also gives a recipe with standard tools).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mgmt.h"
#include "vigilctl_int.h"

static int export_opt(int opt, const char *arg, void *ctx)
{
	if (opt != 1)
		return -1;
	*(const char **)ctx = arg;
	return 0;
}

/* The export's last line: {"head":{...}}, the signed head its entries end at. */
static int write_head(FILE *f, json_t *head)
{
	json_t *rec = json_pack("{s:O}", "head", head ? head : json_null());
	char *line = rec ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	int rc = line && fprintf(f, "%s\n", line) >= 0 ? 0 : -EIO;

	free(line);
	json_decref(rec);
	return rc;
}

/* audit export [--out FILE]: page through audit.export, one JSON line per entry, then the head. */
static int audit_export(int argc, char **argv)
{
	static const struct option opts[] = { { "out", required_argument, NULL, 1 } };
	const char *path = NULL;
	long long since = 0, n = 0;
	char last_hash[80] = "";
	struct cli cli;
	FILE *f = stdout;
	json_t *r, *head = NULL;
	bool more = true;
	int first, rc = 1;

	first = vigilctl_opts(argc, argv, &cli, opts, 1, export_opt, &path);
	if (first < 0)
		return 2;
	if (first != argc) {
		return vigilctl_usage("export: unexpected argument '%s'", argv[first]);
	}
	if (path) {
		/* The log names officers and what they did: readable by its owner only. */
		int fd = vigilctl_out_open(path);

		if (fd < 0)
			return 1;
		f = fdopen(fd, "w");
		if (!f) {
			fprintf(stderr, "vigilctl: audit export: %s: %s\n", path, strerror(errno));
			close(fd);
			return 1;
		}
	}
	/*
	 * Page by page (vigild answers 1000 entries at most); the first page audits the export. The
	 * last page's head was anchored before its entries were read: entries after it are left out,
	 * so that the file ends at the head it is signed up to.
	 */
	while (more) {
		size_t i;
		json_t *e;

		/* The entries go out byte for byte (their hashes cover them): data, not text for a terminal. */
		cli.data = true;
		if (vigilctl_call(&cli, "audit.export", json_pack("{s:I}", "since", (json_int_t)since), &r))
			goto out_close;
		more = json_is_true(json_object_get(r, "more")) && json_array_size(json_object_get(r, "entries")) > 0;
		json_decref(head);
		head = json_incref(json_object_get(r, "head"));
		json_array_foreach(json_object_get(r, "entries"), i, e) {
			if (!more && json_integer_value(json_object_get(e, "seq")) >
					     json_integer_value(json_object_get(head, "seq")))
				break;
			char *line = json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER);

			if (!line || fprintf(f, "%s\n", line) < 0) {
				free(line);
				json_decref(r);
				fprintf(stderr, "vigilctl: audit export: write failed\n");
				goto out_close;
			}
			free(line);
			since = json_integer_value(json_object_get(e, "seq"));
			snprintf(last_hash, sizeof(last_hash), "%s", json_string_value(json_object_get(e, "hash")));
			n++;
		}
		json_decref(r);
	}
	if (write_head(f, head) < 0) {
		fprintf(stderr, "vigilctl: audit export: write failed\n");
		goto out_close;
	}
	rc = 0;
out_close:
	if (path) {
		if (fclose(f) != 0 && rc == 0) {
			fprintf(stderr, "vigilctl: audit export: %s: %s\n", path, strerror(errno));
			rc = 1;
		}
		if (rc != 0)
			unlink(path); /* half an export would verify as a whole, shorter chain */
		if (rc == 0 && cli.json) {
			json_t *sum = json_pack("{s:s, s:I, s:I, s:s, s:O}", "out", path, "entries", (json_int_t)n, "last",
						(json_int_t)since, "hash", last_hash, "head", head);
			vigilctl_print_json(sum);
			json_decref(sum);
		} else if (rc == 0) {
			const char *key = json_string_value(json_object_get(head, "public_key"));

			printf("exported %lld audit entries to %s; the last, %lld, hashes to %s\n", n, path, since,
			       last_hash);
			printf(key ? "its head is signed by the appliance's ed25519 key %s\n"
				   : "its head is NOT signed%s\n", key ? key : "");
		}
	} else if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "vigilctl: audit export: write failed\n");
		rc = 1;
	}
	json_decref(head);
	return rc;
}

struct verify_opts {
	const char *public_key, *export;
};

static int verify_opt(int opt, const char *arg, void *ctx)
{
	struct verify_opts *o = ctx;

	if (opt == 1 && strlen(arg) == 2 * MGMT_AUDIT_KEY_BYTES && strspn(arg, "0123456789abcdef") == strlen(arg))
		o->public_key = arg;
	else if (opt == 1) {
		vigilctl_usage("verify: --public-key takes %d lower-case hex digits", 2 * MGMT_AUDIT_KEY_BYTES);
		return -2;
	} else if (opt == 2)
		o->export = arg;
	else
		return -1;
	return 0;
}

#define EXPORT_LINE_MAX (4u << 20) /* a page is 512 KiB of entries; one entry is far less */

/* One line of an export: an entry chained to PREV (moved on to its hash), or -EBADMSG with WHY. */
static int offline_entry(json_t *e, long long n, unsigned char prev[MGMT_AUDIT_HASH_BYTES], char *why, size_t len)
{
	char prev_hex[2 * MGMT_AUDIT_HASH_BYTES + 1], hex[2 * MGMT_AUDIT_HASH_BYTES + 1];
	unsigned char h[MGMT_AUDIT_HASH_BYTES];
	json_t *d = json_object_get(e, "detail");
	struct mgmt_audit_entry ent = {
		.seq = json_integer_value(json_object_get(e, "seq")),
		.ts_ns = json_integer_value(json_object_get(e, "ts_ns")),
		.uid = json_integer_value(json_object_get(e, "uid")),
		.actor = json_string_value(json_object_get(e, "actor")),
		.action = json_string_value(json_object_get(e, "action")),
		.object = json_string_value(json_object_get(e, "object")),
		.detail = json_string_value(d),
	};
	const char *want_prev = json_string_value(json_object_get(e, "prev_hash"));
	const char *want = json_string_value(json_object_get(e, "hash"));

	if (ent.seq != n || !ent.actor || !ent.action || !ent.object || (d && !json_is_null(d) && !ent.detail))
		return snprintf(why, len, "it is not entry %lld", n), -EBADMSG;
	sodium_bin2hex(prev_hex, sizeof(prev_hex), prev, MGMT_AUDIT_HASH_BYTES);
	if (!want_prev || strcmp(want_prev, prev_hex) != 0)
		return snprintf(why, len, "entry %lld does not follow the entry before it", n), -EBADMSG;
	mgmt_audit_entry_hash(prev, &ent, h);
	sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	if (!want || strcmp(want, hex) != 0)
		return snprintf(why, len, "entry %lld was altered after it was written", n), -EBADMSG;
	memcpy(prev, h, sizeof(h));
	return 0;
}

/* The export's last line: the head, at the last entry, signed, by the pinned key if one is given. */
static int offline_head(json_t *head, long long n, const char *last_hash, const char *pin, char *why, size_t len)
{
	const char *hash = json_string_value(json_object_get(head, "hash"));
	const char *key = json_string_value(json_object_get(head, "public_key"));
	const char *sig = json_string_value(json_object_get(head, "signature"));
	long long seq = json_integer_value(json_object_get(head, "seq"));

	if (!key || !sig)
		return snprintf(why, len, "its head is not signed"), -EBADMSG;
	if (seq != n || !hash || strcmp(hash, last_hash) != 0)
		return snprintf(why, len, "the signed head is entry %lld, not the last entry, %lld", seq, n), -EBADMSG;
	if (pin && strcmp(pin, key) != 0)
		return snprintf(why, len, "its head is signed by key %.16s..., not the pinned %.16s...", key, pin),
		       -EBADMSG;
	if (mgmt_audit_head_check(seq, hash, key, sig) < 0)
		return snprintf(why, len, "the head's signature does not hold: the export was rewritten"), -EBADMSG;
	return 0;
}

/* verify --export FILE [--public-key KEY]: an export checked with nothing but the file (and a key). */
static int verify_export(const struct cli *cli, const struct verify_opts *o)
{
	unsigned char prev[MGMT_AUDIT_HASH_BYTES] = { 0 };
	char why[192] = "", last[2 * MGMT_AUDIT_HASH_BYTES + 1] = "", key[2 * MGMT_AUDIT_KEY_BYTES + 1] = "";
	long long n = 0, lineno = 0;
	bool head_seen = false;
	size_t cap = 0;
	char *line = NULL;
	ssize_t got;
	FILE *f;

	if (sodium_init() < 0) {
		fprintf(stderr, "vigilctl: audit verify: libsodium failed to initialise\n");
		return 1;
	}
	/* O_NONBLOCK and a regular file only: a FIFO named --export is refused, never waited on. */
	struct stat st = { .st_mode = S_IFREG }; /* fstat failing: errno says why */
	int fd = open(o->export, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !(f = fdopen(fd, "r"))) {
		fprintf(stderr, "vigilctl: audit verify: %s: %s\n", o->export,
			fd >= 0 && !S_ISREG(st.st_mode) ? "not a regular file (a FIFO, device or folder is refused)"
							: strerror(errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	/* Cost: one hash per entry, one signature check at the end. */
	while (!why[0] && (got = getline(&line, &cap, f)) > 0) {
		json_t *j = (size_t)got <= EXPORT_LINE_MAX ? json_loads(line, 0, NULL) : NULL;
		json_t *head = json_object_get(j, "head");

		lineno++;
		if (!json_is_object(j))
			snprintf(why, sizeof(why), "line %lld is not a JSON object", lineno);
		else if (head_seen)
			snprintf(why, sizeof(why), "line %lld follows the signed head", lineno);
		else if (head) {
			head_seen = true;
			if (offline_head(head, n, last, o->public_key, why, sizeof(why)) == 0)
				snprintf(key, sizeof(key), "%s", json_string_value(json_object_get(head, "public_key")));
		} else if (offline_entry(j, n + 1, prev, why, sizeof(why)) == 0) {
			n++;
			sodium_bin2hex(last, sizeof(last), prev, sizeof(prev));
		}
		json_decref(j);
	}
	free(line);
	if (!why[0] && ferror(f))
		snprintf(why, sizeof(why), "%s", strerror(errno));
	fclose(f);
	if (!why[0] && !head_seen)
		snprintf(why, sizeof(why), "it has no signed head (cut short, or exported before heads were signed)");
	if (why[0]) {
		fprintf(stderr, "vigilctl: export %s BROKEN: %s\n", o->export, why);
		return 1;
	}
	if (cli->json) {
		json_t *r = json_pack("{s:b, s:I, s:s, s:s, s:b}", "intact", 1, "entries", (json_int_t)n, "hash", last,
				      "public_key", key, "pinned", o->public_key != NULL);
		vigilctl_print_json(r);
		json_decref(r);
	} else {
		printf("export intact: %lld entries, each chained to the one before; the last, %lld, is the signed head\n",
		       n, n);
		printf("public key: %s (%s)\n", key, o->public_key ? "the pinned key" : "compare it with the key you hold");
	}
	return 0;
}

/* verify [--public-key KEY]: vigild checks its chain and head; exit 0 only for a signed, whole chain. */
static int audit_verify(int argc, char **argv)
{
	static const struct option opts[] = { { "public-key", required_argument, NULL, 1 },
					      { "export", required_argument, NULL, 2 } };
	struct verify_opts o = { 0 };
	struct cli cli;
	json_t *r, *head;
	int first = vigilctl_opts(argc, argv, &cli, opts, 2, verify_opt, &o);

	if (first < 0)
		return 2;
	if (first != argc) {
		return vigilctl_usage("verify: unexpected argument '%s'", argv[first]);
	}
	if (o.export)
		return verify_export(&cli, &o);
	if (vigilctl_call(&cli, "audit.verify", o.public_key ? json_pack("{s:s}", "public_key", o.public_key) : NULL,
			  &r))
		return 1;
	bool intact = json_is_true(json_object_get(r, "intact"));
	bool head_signed = json_is_true(json_object_get(r, "head_signed"));
	long long entries = json_integer_value(json_object_get(r, "entries"));
	const char *key = json_string_value(json_object_get(r, "public_key"));
	/* An empty log has no head to sign; any other head must be signed to pass. */
	bool ok = intact && (head_signed || (entries == 0 && !o.public_key));

	head = json_object_get(r, "head");
	if (cli.json) {
		vigilctl_print_json(r);
	} else {
		if (intact)
			printf("audit log intact: %lld entries, each chained to the one before\n", entries);
		if (head_signed)
			printf("head: entry %lld, signed by the appliance's ed25519 key%s\n",
			       (long long)json_integer_value(json_object_get(head, "seq")),
			       o.public_key ? ", the pinned one" : "");
		printf("public key: %s\n", key ? key : "(none yet: nothing was appended)");
	}
	if (!intact)
		fprintf(stderr, "vigilctl: audit log BROKEN at entry %lld: %s\n",
			(long long)json_integer_value(json_object_get(r, "first_bad")),
			json_string_value(json_object_get(r, "reason")));
	else if (!ok)
		fprintf(stderr, "vigilctl: audit head (entry %lld) is NOT signed: written before heads were signed; "
				"vigild signs it at the next change\n",
			(long long)json_integer_value(json_object_get(head, "seq")));
	json_decref(r);
	return ok ? 0 : 1;
}

static int audit_opt(int opt, const char *arg, void *ctx)
{
	char *end;
	long long v = strtoll(arg, &end, 10);

	if (opt != 1 || *end || v < 0)
		return -1;
	*(long long *)ctx = v;
	return 0;
}

int vigilctl_audit(int argc, char **argv)
{
	static const struct option opts[] = { { "since", required_argument, NULL, 1 } };
	long long since = 0;
	struct cli cli;
	json_t *r;

	if (argc >= 2 && strcmp(argv[1], "export") == 0)
		return audit_export(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "verify") == 0)
		return audit_verify(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "list") != 0) {
		return vigilctl_usage("list|verify|export");
	}
	if (vigilctl_opts(argc - 1, argv + 1, &cli, opts, 1, audit_opt, &since) < 0)
		return 2;
	if (vigilctl_call(&cli, "audit.list", json_pack("{s:I}", "since", (json_int_t)since), &r))
		return 1;
	if (cli.json) {
		vigilctl_print_json(r);
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "entries"), i, e) {
			char when[32];
			vigilctl_fmt_time(json_integer_value(json_object_get(e, "ts_ns")) / 1000000000, when, sizeof(when));
			printf("%6lld %s %-16s %-30s %s %s\n", (long long)json_integer_value(json_object_get(e, "seq")), when,
			       json_string_value(json_object_get(e, "actor")), json_string_value(json_object_get(e, "action")),
			       json_string_value(json_object_get(e, "object")),
			       json_is_string(json_object_get(e, "detail")) ? json_string_value(json_object_get(e, "detail"))
									     : "");
		}
	}
	json_decref(r);
	return 0;
}
