/*
 * vigilctl status [--json]: what vigild runs (version, schema, active deployments, the capture
 * child) and who the caller is to it, over the control socket.
 */
#include <jansson.h>
#include <stdio.h>

#include "vigilctl_int.h"

int vigilctl_status(int argc, char **argv)
{
	struct cli cli;
	json_t *r;

	if (vigilctl_opts(argc, argv, &cli, NULL, 0, NULL, NULL) < 0)
		return 2;
	if (vigilctl_call(&cli, "status", NULL, &r))
		return 1;
	if (cli.json)
		vigilctl_print_json(r);
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
