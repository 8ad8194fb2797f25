/*
 * vigilctl's verbs that talk to vigild over the control socket: status, deployment ..., audit ....
 * Each builds one JSON request, sends it (mgmt_ctl_call), and prints the reply as text for people
 * or, with --json, the reply's result as is. Errors: one line on stderr, exit 1 (vigild said no)
 * or 2 (bad usage). The socket is --socket PATH, else $VIGIL_SOCKET, else /run/vigil/vigild.sock.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgmt.h"
#include "vigilctl_int.h"

int vigilctl_status(int argc, char **argv);
int vigilctl_deployment(int argc, char **argv);
int vigilctl_audit(int argc, char **argv);
int vigilctl_alert(int argc, char **argv);
int vigilctl_alert_evidence(int argc, char **argv);
int vigilctl_alert_show_out(int argc, char **argv);
int vigilctl_audit_export(int argc, char **argv);

static const char *default_socket(void)
{
	const char *env = getenv("VIGIL_SOCKET");
	return env && *env ? env : "/run/vigil/vigild.sock";
}

/* Send VERB with ARGS (stolen), print errors; on success *RESULT is the borrowed-then-owned result. */
/* As call(), passing N_FDS open descriptors with the request (SCM_RIGHTS). */
static int call_fds(const struct cli *cli, const char *verb, json_t *args, const int *fds, unsigned n_fds,
		    json_t **result)
{
	json_t *req = json_pack("{s:s, s:o}", "verb", verb, "args", args ? args : json_object());
	char *text = json_dumps(req, JSON_COMPACT), *reply = NULL, err[512];
	json_t *rep;
	int rc;

	json_decref(req);
	rc = mgmt_ctl_call_fds(cli->socket ? cli->socket : default_socket(), text, fds, n_fds, &reply, err, sizeof(err));
	free(text);
	if (rc < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		return 1;
	}
	rep = json_loads(reply, 0, NULL);
	free(reply);
	if (!rep) {
		fprintf(stderr, "vigilctl: vigild sent a reply that is not JSON\n");
		return 1;
	}
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *why = json_string_value(json_object_get(rep, "error"));
		fprintf(stderr, "vigilctl: %s: %s\n", verb, why ? why : "refused");
		json_decref(rep);
		return 1;
	}
	*result = json_incref(json_object_get(rep, "result"));
	json_decref(rep);
	return 0;
}

static int call(const struct cli *cli, const char *verb, json_t *args, json_t **result)
{
	return call_fds(cli, verb, args, NULL, 0, result);
}

static int print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

/* "now", "+8h", "+30m", Unix seconds, or "YYYY-MM-DDTHH:MM[:SS]" in UTC. -1 when unreadable. */
static long long parse_time(const char *s)
{
	struct tm tm = { 0 };
	char *end;

	if (strcmp(s, "now") == 0)
		return (long long)time(NULL);
	if (s[0] == '+') {
		long long n = strtoll(s + 1, &end, 10);
		long long unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : *end == 'd' ? 86400 : 0;
		return unit && end[1] == '\0' && n >= 0 ? (long long)time(NULL) + n * unit : -1;
	}
	long long n = strtoll(s, &end, 10);
	if (*end == '\0' && end != s)
		return n;
	end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (end && *end == ':')
		end = strptime(end, ":%S", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return -1;
	return (long long)timegm(&tm);
}

static void fmt_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", gmtime_r(&tt, &tm));
}

static int common_opts(int argc, char **argv, struct cli *cli, const struct option *extra, size_t n_extra,
		       int (*on_opt)(int opt, const char *arg, void *ctx), void *ctx)
{
	struct option opts[24] = { { "socket", required_argument, NULL, 'S' }, { "json", no_argument, NULL, 'J' } };
	int c;

	memcpy(opts + 2, extra, n_extra * sizeof(*extra));
	memset(opts + 2 + n_extra, 0, sizeof(*opts));
	cli->socket = default_socket();
	cli->json = false;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'S')
			cli->socket = optarg;
		else if (c == 'J')
			cli->json = true;
		else if (c == '?' || !on_opt || (c = on_opt(c, optarg, ctx)) < 0) {
			/* -2: the option's handler already said why, in one line. */
			if (c != -2)
				fprintf(stderr, "vigilctl: %s: bad option '%s' (vigilctl --help)\n", argv[0], argv[optind - 1]);
			return -1;
		}
	}
	return optind;
}

/* ARGV[FIRST], if present, is WHAT's id (a positive integer) and goes into ARGS as "id"; more is an error. */
static int positional_id(int argc, char **argv, int first, const char *what, const char *sub, json_t *args)
{
	char *end;

	if (first == argc)
		return 0;
	if (first + 1 < argc) {
		fprintf(stderr, "vigilctl: %s %s: too many arguments\n", what, sub);
		return -1;
	}
	long long id = strtoll(argv[first], &end, 10);
	if (*end || id <= 0) {
		fprintf(stderr, "vigilctl: '%s' is not a%s %s id\n", argv[first], what[0] == 'a' ? "n" : "", what);
		return -1;
	}
	json_object_set_new(args, "id", json_integer(id));
	return 0;
}

int vigilctl_status(int argc, char **argv)
{
	struct cli cli;
	json_t *r;

	if (common_opts(argc, argv, &cli, NULL, 0, NULL, NULL) < 0)
		return 2;
	if (call(&cli, "status", NULL, &r))
		return 1;
	if (cli.json)
		print_json(r);
	else
		printf("vigild %s (schema %lld): %lld deployment(s) matching; you are %s; dumpable: %s; capabilities: %s\n",
		       json_string_value(json_object_get(r, "version")),
		       (long long)json_integer_value(json_object_get(r, "schema")),
		       (long long)json_integer_value(json_object_get(r, "deployments_active")),
		       json_string_value(json_object_get(r, "you")),
		       json_is_true(json_object_get(r, "dumpable")) ? "yes" : "no",
		       json_string_value(json_object_get(r, "capabilities")));
	json_t *cap = json_object_get(r, "capture");
	if (!cli.json && cap) {
		const char *note = json_string_value(json_object_get(cap, "note"));
		if (json_is_true(json_object_get(cap, "running")))
			printf("capture: running for deployment %lld (pid %lld), %lld start(s), %lld failure(s)%s%s\n",
			       (long long)json_integer_value(json_object_get(cap, "deployment")),
			       (long long)json_integer_value(json_object_get(cap, "pid")),
			       (long long)json_integer_value(json_object_get(cap, "starts")),
			       (long long)json_integer_value(json_object_get(cap, "failures")), note && *note ? "; " : "",
			       note ? note : "");
		else
			printf("capture: not running: %s\n", note && *note ? note : "no active deployment");
	}
	json_decref(r);
	return 0;
}

struct deploy_opts {
	json_t *args;
	json_t *watchlists;
	int bad;
};

static int deploy_opt(int opt, const char *arg, void *vctx)
{
	struct deploy_opts *d = vctx;
	static const char *const keys[] = { [1] = "name", [2] = "use_case", [3] = "location", [4] = "justification",
					    [5] = "reasons", [6] = "reason" };
	long long t;

	switch (opt) {
	case 1: case 2: case 3: case 4: case 5: case 6:
		json_object_set_new(d->args, keys[opt], json_string(arg));
		return 0;
	case 7:
		json_array_append_new(d->watchlists, json_string(arg));
		return 0;
	case 8: case 9:
		t = parse_time(arg);
		if (t < 0) {
			fprintf(stderr, "vigilctl: '%s' is not a time (now, +8h, Unix seconds, or 2026-11-22T09:00Z)\n", arg);
			d->bad = 1;
			return -2;
		}
		json_object_set_new(d->args, opt == 8 ? "start" : "end", json_integer(t));
		return 0;
	}
	return -1;
}

static void print_deployment(json_t *d)
{
	char start[32], end[32];

	fmt_time(json_integer_value(json_object_get(d, "start")), start, sizeof(start));
	fmt_time(json_integer_value(json_object_get(d, "end")), end, sizeof(end));
	printf("%-4lld %-11s %-20s %-24s %s .. %s  requested by %s%s%s\n",
	       (long long)json_integer_value(json_object_get(d, "id")), json_string_value(json_object_get(d, "state")),
	       json_string_value(json_object_get(d, "use_case")), json_string_value(json_object_get(d, "name")), start,
	       end, json_string_value(json_object_get(d, "requested_by")),
	       json_object_get(d, "authorised_by") ? ", authorised by " : "",
	       json_object_get(d, "authorised_by") ? json_string_value(json_object_get(d, "authorised_by")) : "");
}

int vigilctl_deployment(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 1 },      { "use-case", required_argument, NULL, 2 },
		{ "location", required_argument, NULL, 3 },  { "justification", required_argument, NULL, 4 },
		{ "reasons", required_argument, NULL, 5 },   { "reason", required_argument, NULL, 6 },
		{ "watchlist", required_argument, NULL, 7 }, { "start", required_argument, NULL, 8 },
		{ "end", required_argument, NULL, 9 },
	};
	struct deploy_opts d = { json_object(), json_array(), 0 };
	const char *sub, *verb;
	struct cli cli;
	json_t *r = NULL;
	int first, rc = 2;

	if (argc < 2) {
		fprintf(stderr, "vigilctl: deployment create|authorise|refuse|start|stop|show|list (vigilctl --help)\n");
		goto out;
	}
	sub = argv[1];
	first = common_opts(argc - 1, argv + 1, &cli, opts, sizeof(opts) / sizeof(opts[0]), deploy_opt, &d);
	if (first < 0)
		goto out;
	first += 1; /* common_opts saw argv + 1 */
	/* The deployment id is the one positional argument of the verbs that take one. */
	if (positional_id(argc, argv, first, "deployment", sub, d.args) < 0)
		goto out;
	if (strcmp(sub, "create") == 0) {
		json_object_set(d.args, "watchlists", d.watchlists);
		verb = "deployment.create";
	} else if (strcmp(sub, "authorise") == 0 || strcmp(sub, "authorize") == 0) {
		verb = "deployment.authorise";
	} else if (strcmp(sub, "refuse") == 0) {
		verb = "deployment.refuse";
	} else if (strcmp(sub, "start") == 0) {
		verb = "deployment.start";
	} else if (strcmp(sub, "stop") == 0) {
		verb = "deployment.stop";
	} else if (strcmp(sub, "show") == 0) {
		verb = "deployment.show";
	} else if (strcmp(sub, "list") == 0) {
		verb = "deployment.list";
	} else {
		fprintf(stderr, "vigilctl: deployment: unknown sub-command '%s'\n", sub);
		goto out;
	}
	rc = call(&cli, verb, json_incref(d.args), &r);
	if (rc)
		goto out;
	if (cli.json) {
		print_json(r);
	} else if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "deployments"), i, v)
			print_deployment(v);
	} else if (strcmp(sub, "show") == 0) {
		print_deployment(r);
		json_t *t = json_object_get(r, "transparency");
		if (t)
			printf("     faces scanned %lld, alerts %lld: %lld confirmed, %lld rejected (false alerts), %lld unreviewed\n",
			       (long long)json_integer_value(json_object_get(t, "faces_scanned")),
			       (long long)json_integer_value(json_object_get(t, "alerts")),
			       (long long)json_integer_value(json_object_get(t, "confirmed")),
			       (long long)json_integer_value(json_object_get(t, "rejected_false")),
			       (long long)json_integer_value(json_object_get(t, "unreviewed")));
		size_t i;
		json_t *h;
		json_array_foreach(json_object_get(r, "hours"), i, h) {
			char when[32];
			fmt_time(json_integer_value(json_object_get(h, "hour")), when, sizeof(when));
			printf("     %.16s  faces %lld, alerts %lld: %lld confirmed, %lld rejected, %lld unreviewed\n", when,
			       (long long)json_integer_value(json_object_get(h, "faces_scanned")),
			       (long long)json_integer_value(json_object_get(h, "alerts")),
			       (long long)json_integer_value(json_object_get(h, "confirmed")),
			       (long long)json_integer_value(json_object_get(h, "rejected_false")),
			       (long long)json_integer_value(json_object_get(h, "unreviewed")));
		}
	} else {
		printf("deployment %lld: %s\n", (long long)json_integer_value(json_object_get(r, "id")),
		       json_object_get(r, "state") ? json_string_value(json_object_get(r, "state")) : "requested");
	}
	json_decref(r);
out:
	json_decref(d.args);
	json_decref(d.watchlists);
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
		return vigilctl_audit_export(argc - 1, argv + 1); /* vigilctl_config.c */
	if (argc < 2 || (strcmp(argv[1], "list") != 0 && strcmp(argv[1], "verify") != 0)) {
		fprintf(stderr, "vigilctl: audit list|verify|export (vigilctl --help)\n");
		return 2;
	}
	if (common_opts(argc - 1, argv + 1, &cli, opts, 1, audit_opt, &since) < 0)
		return 2;
	if (strcmp(argv[1], "verify") == 0) {
		if (call(&cli, "audit.verify", NULL, &r))
			return 1;
		bool intact = json_is_true(json_object_get(r, "intact"));
		if (cli.json)
			print_json(r);
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
	if (call(&cli, "audit.list", json_pack("{s:I}", "since", (json_int_t)since), &r))
		return 1;
	if (cli.json) {
		print_json(r);
	} else {
		size_t i;
		json_t *e;
		json_array_foreach(json_object_get(r, "entries"), i, e) {
			char when[32];
			fmt_time(json_integer_value(json_object_get(e, "ts_ns")) / 1000000000, when, sizeof(when));
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

struct alert_opts {
	json_t *args;
};

static int alert_opt(int opt, const char *arg, void *vctx)
{
	struct alert_opts *a = vctx;

	switch (opt) {
	case 1: json_object_set_new(a->args, "decision", json_string("confirm")); return 0;
	case 2: json_object_set_new(a->args, "decision", json_string("reject")); return 0;
	case 3: json_object_set_new(a->args, "note", json_string(arg)); return 0;
	case 4: json_object_set_new(a->args, "unreviewed", json_true()); return 0;
	}
	return -1;
}

static void print_alert(json_t *a)
{
	printf("%-5lld %-10s deployment %lld  %s t=%.1f s track %lld  %s (watchlist %s) %s %.3f <= %.2f  %s%s\n",
	       (long long)json_integer_value(json_object_get(a, "id")), json_string_value(json_object_get(a, "outcome")),
	       (long long)json_integer_value(json_object_get(a, "deployment")),
	       json_string_value(json_object_get(a, "camera")), json_real_value(json_object_get(a, "time_s")),
	       (long long)json_integer_value(json_object_get(a, "track")), json_string_value(json_object_get(a, "subject")),
	       json_string_value(json_object_get(a, "watchlist")), json_string_value(json_object_get(a, "metric")),
	       json_real_value(json_object_get(a, "value")), json_real_value(json_object_get(a, "threshold")),
	       json_is_string(json_object_get(a, "evidence")) ? "evidence " : "EVIDENCE NOT SAVED",
	       json_is_string(json_object_get(a, "evidence")) ? json_string_value(json_object_get(a, "evidence")) : "");
	if (json_is_string(json_object_get(a, "reviewed_by")))
		printf("      reviewed by %s: %s\n", json_string_value(json_object_get(a, "reviewed_by")),
		       json_string_value(json_object_get(a, "note")));
}

int vigilctl_alert(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "confirm", no_argument, NULL, 1 }, { "reject", no_argument, NULL, 2 },
		{ "note", required_argument, NULL, 3 }, { "unreviewed", no_argument, NULL, 4 },
	};
	struct alert_opts a = { json_object() };
	const char *sub, *verb;
	struct cli cli;
	json_t *r = NULL;
	int first, rc = 2;

	if (argc < 2) {
		fprintf(stderr, "vigilctl: alert list [--unreviewed] | show ID | review ID --confirm|--reject --note N\n");
		goto out;
	}
	sub = argv[1];
#ifdef HAVE_VIGIL_STORE
	if (strcmp(sub, "evidence") == 0) {
		json_decref(a.args);
		return vigilctl_alert_evidence(argc - 1, argv + 1);
	}
	/* show --out: the evidence beside the enrolment crop, read from the state directory (vigilctl_alert_show.c). */
	for (int i = 2; strcmp(sub, "show") == 0 && i < argc; i++)
		if (strcmp(argv[i], "--out") == 0 || strncmp(argv[i], "--out=", 6) == 0) {
			json_decref(a.args);
			return vigilctl_alert_show_out(argc - 1, argv + 1);
		}
#endif
	first = common_opts(argc - 1, argv + 1, &cli, opts, sizeof(opts) / sizeof(opts[0]), alert_opt, &a);
	if (first < 0)
		goto out;
	first += 1;
	if (positional_id(argc, argv, first, "alert", sub, a.args) < 0)
		goto out;
	if (strcmp(sub, "list") == 0)
		verb = "alert.list";
	else if (strcmp(sub, "show") == 0)
		verb = "alert.show";
	else if (strcmp(sub, "review") == 0)
		verb = "alert.review";
	else {
		fprintf(stderr, "vigilctl: alert: unknown sub-command '%s'\n", sub);
		goto out;
	}
	rc = call(&cli, verb, json_incref(a.args), &r);
	if (rc)
		goto out;
	if (cli.json) {
		print_json(r);
	} else if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "alerts"), i, v)
			print_alert(v);
	} else if (strcmp(sub, "show") == 0) {
		print_alert(r);
	} else {
		printf("alert %lld: %s\n", (long long)json_integer_value(json_object_get(r, "id")),
		       json_string_value(json_object_get(r, "outcome")));
	}
	json_decref(r);
out:
	json_decref(a.args);
	return rc;
}

/* ---- the helpers above, for the verbs in other files (vigilctl_int.h) ----------------------- */

int vigilctl_call(const struct cli *cli, const char *verb, json_t *args, json_t **result)
{
	return call(cli, verb, args, result);
}

int vigilctl_call_fds(const struct cli *cli, const char *verb, json_t *args, const int *fds, unsigned n_fds,
		      json_t **result)
{
	return call_fds(cli, verb, args, fds, n_fds, result);
}

int vigilctl_print_json(json_t *j)
{
	return print_json(j);
}

int vigilctl_opts(int argc, char **argv, struct cli *cli, const struct option *extra, size_t n_extra,
		  int (*on_opt)(int opt, const char *arg, void *ctx), void *ctx)
{
	return common_opts(argc, argv, cli, extra, n_extra, on_opt, ctx);
}

void vigilctl_fmt_time(long long t, char *buf, size_t len)
{
	fmt_time(t, buf, len);
}
