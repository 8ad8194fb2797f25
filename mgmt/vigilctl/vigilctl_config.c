/*
 * vigilctl config get|set, retention [show]|set and audit export, over the control socket
 * (mgmt_settings.c, mgmt_audit_export.c). config set and retention set are admin's and kept in
 * vigild's database, so they survive a restart; audit export writes the whole hash chain as JSON
 * lines that can be checked offline (vigilctl(1) gives the recipe).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigilctl_int.h"

int vigilctl_config(int argc, char **argv);
int vigilctl_retention(int argc, char **argv);
int vigilctl_audit_export(int argc, char **argv);

int vigilctl_config(int argc, char **argv)
{
	struct cli cli;
	json_t *r, *args = json_object();
	const char *sub = argc >= 2 ? argv[1] : "";
	int first;

	if (strcmp(sub, "get") != 0 && strcmp(sub, "set") != 0) {
		fprintf(stderr, "vigilctl: config get [KEY] | set KEY VALUE (vigilctl --help)\n");
		goto out_usage;
	}
	first = vigilctl_opts(argc - 1, argv + 1, &cli, NULL, 0, NULL, NULL);
	if (first < 0)
		goto out_usage;
	first += 1;
	int n = argc - first;
	if (strcmp(sub, "get") == 0 ? n > 1 : n != 2) {
		fprintf(stderr, "vigilctl: config %s: %s\n", sub,
			strcmp(sub, "get") == 0 ? "at most one KEY" : "needs KEY VALUE");
		goto out_usage;
	}
	if (n >= 1)
		json_object_set_new(args, "name", json_string(argv[first]));
	if (n == 2)
		json_object_set_new(args, "value", json_string(argv[first + 1]));
	if (vigilctl_call(&cli, strcmp(sub, "get") == 0 ? "config.get" : "config.set", args, &r))
		return 1;
	if (cli.json) {
		vigilctl_print_json(r);
	} else if (strcmp(sub, "set") == 0) {
		printf("%s = %s (was %s); kept across restarts\n", json_string_value(json_object_get(r, "name")),
		       json_string_value(json_object_get(r, "value")), json_string_value(json_object_get(r, "old")));
	} else {
		size_t i;
		json_t *s;

		json_array_foreach(json_object_get(r, "settings"), i, s)
			printf("%-22s %-9s %s\n", json_string_value(json_object_get(s, "name")),
			       !json_is_true(json_object_get(s, "mutable"))  ? "restart"
			       : json_is_true(json_object_get(s, "stored")) ? "set"
									      : "run-time",
			       json_string_value(json_object_get(s, "value")));
	}
	json_decref(r);
	return 0;

out_usage:
	json_decref(args);
	return 2;
}

struct retention_opts {
	long long days[3]; /* confirmed, rejected, unreviewed; -1: keep */
};

static int retention_opt(int opt, const char *arg, void *vctx)
{
	struct retention_opts *o = vctx;
	char *end;
	long long v;

	if (opt < 1 || opt > 3)
		return -1;
	errno = 0;
	v = strtoll(arg, &end, 10);
	if (end == arg || *end || errno || v < 0 || v > 3650) {
		fprintf(stderr, "vigilctl: retention: '%s' is not a number of days (0 to 3650)\n", arg);
		return -2;
	}
	o->days[opt - 1] = v;
	return 0;
}

static void print_retention(json_t *r)
{
	printf("evidence kept: confirmed %lld days, rejected (false alerts) %lld days, unreviewed %lld days\n",
	       (long long)json_integer_value(json_object_get(r, "confirmed_days")),
	       (long long)json_integer_value(json_object_get(r, "rejected_days")),
	       (long long)json_integer_value(json_object_get(r, "unreviewed_days")));
}

int vigilctl_retention(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "confirmed", required_argument, NULL, 1 },
		{ "rejected", required_argument, NULL, 2 },
		{ "unreviewed", required_argument, NULL, 3 },
	};
	static const char *const keys[] = { "confirmed_days", "rejected_days", "unreviewed_days" };
	struct retention_opts o = { { -1, -1, -1 } };
	bool set = argc >= 2 && strcmp(argv[1], "set") == 0;
	bool show = argc < 2 || strcmp(argv[1], "show") == 0 || argv[1][0] == '-';
	struct cli cli;
	json_t *r, *cur;
	int first;

	if (!set && !show) {
		fprintf(stderr, "vigilctl: retention [show] | set --confirmed D --rejected D --unreviewed D\n");
		return 2;
	}
	/* "retention --json" is "retention show --json": argv[0] stands in for the sub-command. */
	int skip = argc >= 2 && argv[1][0] != '-' ? 1 : 0;
	first = vigilctl_opts(argc - skip, argv + skip, &cli, opts, set ? 3 : 0, retention_opt, &o);
	if (first < 0)
		return 2;
	if (first != argc - skip) {
		fprintf(stderr, "vigilctl: retention: unexpected argument '%s'\n", argv[first + skip]);
		return 2;
	}
	if (vigilctl_call(&cli, "retention.show", NULL, &cur))
		return 1;
	if (show) {
		if (cli.json)
			vigilctl_print_json(cur);
		else
			print_retention(cur);
		json_decref(cur);
		return 0;
	}
	if (o.days[0] < 0 && o.days[1] < 0 && o.days[2] < 0) {
		fprintf(stderr, "vigilctl: retention set: give --confirmed, --rejected and/or --unreviewed DAYS\n");
		json_decref(cur);
		return 2;
	}
	/* What is not given stays as it is: the request always carries all three, so one audit
	 * entry shows the whole policy before and after. */
	json_t *args = json_object();
	for (int i = 0; i < 3; i++) {
		long long now = json_integer_value(json_object_get(cur, keys[i]));

		json_object_set_new(args, keys[i], json_integer(o.days[i] >= 0 ? o.days[i] : now));
	}
	json_decref(cur);
	if (vigilctl_call(&cli, "retention.set", args, &r))
		return 1;
	if (cli.json)
		vigilctl_print_json(r);
	else
		print_retention(r);
	json_decref(r);
	return 0;
}

static int export_opt(int opt, const char *arg, void *ctx)
{
	if (opt != 1)
		return -1;
	*(const char **)ctx = arg;
	return 0;
}

int vigilctl_audit_export(int argc, char **argv)
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
