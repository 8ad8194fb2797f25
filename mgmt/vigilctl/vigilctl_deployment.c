/*
 * vigilctl deployment create|authorise|refuse|withdraw|start|stop|show|list: a deployment's life as vigild
 * records it (mgmt_deploy.c), over the control socket. Its requester may not authorise it; show
 * adds the transparency figures (faces scanned, alerts and how they were reviewed) hour by hour.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "vigilctl_int.h"

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
	case 7: {
		/* ID, or ID@SEAL to name the exact watchlist reviewed; a bare ID is bound to the seal
		 * vigild holds it under now (resolved before the request, and printed). */
		const char *at = strchr(arg, '@');
		json_t *w = at ? json_pack("{s:s%, s:s}", "id", arg, (size_t)(at - arg), "seal", at + 1)
			       : json_pack("{s:s}", "id", arg);
		json_array_append_new(d->watchlists, w);
		return 0;
	}
	case 8: case 9:
		t = vigilctl_parse_time(arg);
		if (t < 0) {
			vigilctl_usage("'%s' is not a time (now, +8h, Unix seconds, or 2026-11-22T09:00Z)", arg);
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

	vigilctl_fmt_time(json_integer_value(json_object_get(d, "start")), start, sizeof(start));
	vigilctl_fmt_time(json_integer_value(json_object_get(d, "end")), end, sizeof(end));
	printf("%-4lld %-11s %-20s %-24s %s .. %s  requested by %s%s%s\n",
	       (long long)json_integer_value(json_object_get(d, "id")), json_string_value(json_object_get(d, "state")),
	       json_string_value(json_object_get(d, "use_case")), json_string_value(json_object_get(d, "name")), start,
	       end, json_string_value(json_object_get(d, "requested_by")),
	       json_object_get(d, "authorised_by") ? ", authorised by " : "",
	       json_object_get(d, "authorised_by") ? json_string_value(json_object_get(d, "authorised_by")) : "");
}

/* The false alerts a deployment is expected to raise, as vigild stated them at the request, and
 * (once it has scanned faces) the rate reviewers actually rejected. */
static void print_expected(const char *indent, json_t *e)
{
	if (!e)
		return;
	printf("%s%s\n", indent, json_string_value(json_object_get(e, "text")));
	if (json_object_get(e, "measured_false_per_1000"))
		printf("%smeasured: %.3g false alerts per 1,000 faces (alerts reviewers rejected)\n", indent,
		       json_real_value(json_object_get(e, "measured_false_per_1000")));
}

/* Each watchlist named by id alone gets the seal vigild holds it under, printed for the requester. */
static int resolve_seals(const struct cli *cli, json_t *watchlists)
{
	size_t i;
	json_t *w;

	json_array_foreach(watchlists, i, w) {
		json_t *r = NULL;

		if (json_object_get(w, "seal"))
			continue;
		if (vigilctl_call(cli, "watchlist.show", json_pack("{s:O}", "id", json_object_get(w, "id")), &r))
			return 1;
		json_object_set(w, "seal", json_object_get(r, "sha256"));
		if (!cli->json) /* what the requester binds, on the record of what they typed */
			printf("watchlist %s (%s, %lld subjects) sealed %s\n",
				json_string_value(json_object_get(w, "id")), json_string_value(json_object_get(r, "name")),
				(long long)json_integer_value(json_object_get(r, "subjects")),
				json_string_value(json_object_get(r, "sha256")));
		json_decref(r);
	}
	return 0;
}

/* The seals deployment ARGS.id binds, as deployment.show gives them, into ARGS.seals. */
static int shown_seals(const struct cli *cli, json_t *args)
{
	json_t *r = NULL, *seals = json_array(), *w;
	size_t i;

	if (vigilctl_call(cli, "deployment.show", json_pack("{s:O}", "id", json_object_get(args, "id")), &r)) {
		json_decref(seals);
		return 1;
	}
	json_array_foreach(json_object_get(r, "watchlists"), i, w)
		json_array_append(seals, json_object_get(w, "seal"));
	json_object_set_new(args, "seals", seals);
	if (!cli->json) /* what the authoriser approves, in front of them */
		print_expected("", json_object_get(r, "expected_false_alerts"));
	json_decref(r);
	return 0;
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
		vigilctl_usage("create|authorise|refuse|withdraw|start|stop|show|list");
		goto out;
	}
	sub = argv[1];
	first = vigilctl_opts(argc - 1, argv + 1, &cli, opts, sizeof(opts) / sizeof(opts[0]), deploy_opt, &d);
	if (first < 0)
		goto out;
	first += 1; /* vigilctl_opts saw argv + 1 */
	/* The deployment id is the one positional argument of the verbs that take one. */
	if (vigilctl_positional_id(argc, argv, first, "deployment", sub, d.args) < 0)
		goto out;
	if (strcmp(sub, "create") == 0) {
		if (resolve_seals(&cli, d.watchlists) != 0) {
			rc = 1;
			goto out;
		}
		json_object_set(d.args, "watchlists", d.watchlists);
		verb = "deployment.create";
	} else if (strcmp(sub, "authorise") == 0 || strcmp(sub, "authorize") == 0) {
		/* Approve exactly the sealed watchlists shown to the authoriser now. */
		if (shown_seals(&cli, d.args) != 0) {
			rc = 1;
			goto out;
		}
		verb = "deployment.authorise";
	} else if (strcmp(sub, "refuse") == 0) {
		verb = "deployment.refuse";
	} else if (strcmp(sub, "withdraw") == 0) {
		verb = "deployment.withdraw";
	} else if (strcmp(sub, "start") == 0) {
		verb = "deployment.start";
	} else if (strcmp(sub, "stop") == 0) {
		verb = "deployment.stop";
	} else if (strcmp(sub, "show") == 0) {
		verb = "deployment.show";
	} else if (strcmp(sub, "list") == 0) {
		verb = "deployment.list";
	} else {
		vigilctl_usage("unknown sub-command '%s'", sub);
		goto out;
	}
	rc = vigilctl_call(&cli, verb, json_incref(d.args), &r);
	if (rc)
		goto out;
	if (cli.json) {
		vigilctl_print_json(r);
	} else if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "deployments"), i, v)
			print_deployment(v);
	} else if (strcmp(sub, "show") == 0) {
		print_deployment(r);
		/* What the authoriser weighs; vigilctl_call made both texts terminal-safe. */
		printf("     location: %s\n     justification: %s\n",
		       json_string_value(json_object_get(r, "location")),
		       json_string_value(json_object_get(r, "justification")));
		size_t k;
		json_t *w;
		json_array_foreach(json_object_get(r, "watchlists"), k, w)
			printf("     watchlist %s \"%s\": %lld subjects, threshold %.3g, %s, seal %s%s\n",
			       json_string_value(json_object_get(w, "id")), json_string_value(json_object_get(w, "name")),
			       (long long)json_integer_value(json_object_get(w, "subjects")),
			       json_real_value(json_object_get(w, "threshold")), json_string_value(json_object_get(w, "state")),
			       json_string_value(json_object_get(w, "seal")),
			       json_is_true(json_object_get(w, "seal_matches")) ? "" : " (NOT the watchlist held now)");
		print_expected("     ", json_object_get(r, "expected_false_alerts"));
		if (json_object_get(r, "decision_reasons"))
			printf("     decision: %s\n", json_string_value(json_object_get(r, "decision_reasons")));
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
			vigilctl_fmt_time(json_integer_value(json_object_get(h, "hour")), when, sizeof(when));
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
		print_expected("", json_object_get(r, "expected_false_alerts"));
	}
	json_decref(r);
out:
	json_decref(d.args);
	json_decref(d.watchlists);
	return rc;
}
