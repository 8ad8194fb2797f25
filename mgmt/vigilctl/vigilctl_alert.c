/*
 * vigilctl alert list|show|review|evidence: the alerts of vigild's deployments (mgmt_alert.c),
 * over the control socket; operators review them. `alert evidence` and `alert show --out` read
 * vigild's state directly instead (vigilctl_alert_evidence.c, vigilctl_alert_show.c), where the
 * store is built.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "vg_config.h"
#include "vigilctl_int.h"

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
		vigilctl_usage("list [--unreviewed] | show ID | review ID --confirm|--reject --note N");
		goto out;
	}
	sub = argv[1];
#ifdef HAVE_VIGIL_MGMT_PIPELINE
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
	first = vigilctl_opts(argc - 1, argv + 1, &cli, opts, sizeof(opts) / sizeof(opts[0]), alert_opt, &a);
	if (first < 0)
		goto out;
	first += 1;
	if (vigilctl_positional_id(argc, argv, first, "alert", sub, a.args) < 0)
		goto out;
	if (strcmp(sub, "list") == 0)
		verb = "alert.list";
	else if (strcmp(sub, "show") == 0)
		verb = "alert.show";
	else if (strcmp(sub, "review") == 0)
		verb = "alert.review";
	else {
		vigilctl_usage("unknown sub-command '%s'", sub);
		goto out;
	}
	rc = vigilctl_call(&cli, verb, json_incref(a.args), &r);
	if (rc)
		goto out;
	if (cli.json) {
		vigilctl_print_json(r);
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
