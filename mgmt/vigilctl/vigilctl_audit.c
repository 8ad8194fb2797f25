/*
 * vigilctl audit list|verify|export: the hash-chained audit log (mgmt_audit_export.c), over the
 * control socket. verify exits 1 naming the first entry that breaks the chain; export writes the
 * whole chain as JSON lines that can be checked offline (vigilctl(1) gives the recipe).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigilctl_int.h"

static int export_opt(int opt, const char *arg, void *ctx)
{
	if (opt != 1)
		return -1;
	*(const char **)ctx = arg;
	return 0;
}

/* audit export [--out FILE]: page through audit.export, one JSON line per entry. */
static int audit_export(int argc, char **argv)
{
	static const struct option opts[] = { { "out", required_argument, NULL, 1 } };
	const char *path = NULL;
	long long since = 0, n = 0;
	char last_hash[80] = "";
	struct cli cli;
	FILE *f = stdout;
	json_t *r;
	bool more = true;
	int first, rc = 1;

	first = vigilctl_opts(argc, argv, &cli, opts, 1, export_opt, &path);
	if (first < 0)
		return 2;
	if (first != argc) {
		fprintf(stderr, "vigilctl: audit export: unexpected argument '%s'\n", argv[first]);
		return 2;
	}
	if (path) {
		/* The log names officers and what they did: readable by its owner only. */
		int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		f = fd >= 0 ? fdopen(fd, "w") : NULL;
		if (!f) {
			fprintf(stderr, "vigilctl: audit export: %s: %s\n", path, strerror(errno));
			if (fd >= 0)
				close(fd);
			return 1;
		}
	}
	/* Page by page (vigild answers 1000 entries at most); the first page audits the export. */
	while (more) {
		size_t i;
		json_t *e;

		if (vigilctl_call(&cli, "audit.export", json_pack("{s:I}", "since", (json_int_t)since), &r))
			goto out_close;
		json_array_foreach(json_object_get(r, "entries"), i, e) {
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
		more = json_is_true(json_object_get(r, "more")) && json_array_size(json_object_get(r, "entries")) > 0;
		json_decref(r);
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
			json_t *sum = json_pack("{s:s, s:I, s:I, s:s}", "out", path, "entries", (json_int_t)n, "last",
						(json_int_t)since, "hash", last_hash);
			vigilctl_print_json(sum);
			json_decref(sum);
		} else if (rc == 0)
			printf("exported %lld audit entries to %s; the last, %lld, hashes to %s\n", n, path, since,
			       last_hash);
	} else if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "vigilctl: audit export: write failed\n");
		rc = 1;
	}
	return rc;
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
	if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "verify") != 0)) {
		fprintf(stderr, "vigilctl: audit list|verify|export (vigilctl --help)\n");
		return 2;
	}
	if (vigilctl_opts(argc - 1, argv + 1, &cli, opts, 1, audit_opt, &since) < 0)
		return 2;
	if (strcmp(argv[1], "verify") == 0) {
		if (vigilctl_call(&cli, "audit.verify", NULL, &r))
			return 1;
		bool intact = json_is_true(json_object_get(r, "intact"));
		if (cli.json)
			vigilctl_print_json(r);
		else if (intact)
			printf("audit log intact: %lld entries, each chained to the one before\n",
			       (long long)json_integer_value(json_object_get(r, "entries")));
		if (!intact)
			fprintf(stderr, "vigilctl: audit log BROKEN at entry %lld: %s\n",
				(long long)json_integer_value(json_object_get(r, "first_bad")),
				json_string_value(json_object_get(r, "reason")));
		json_decref(r);
		return intact ? 0 : 1;
	}
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
