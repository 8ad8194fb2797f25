/*
 * vigilctl config get|set: vigild's settings (mgmt_settings.c), over the control socket. config
 * set is admin's and kept in vigild's database, so it survives a restart.
 */
#include <stdio.h>
#include <string.h>

#include "vigilctl_int.h"

int vigilctl_config(int argc, char **argv)
{
	struct cli cli;
	json_t *r, *args = json_object();
	const char *sub = argc >= 2 ? argv[1] : "";
	int first;

	if (strcmp(sub, "get") != 0 && strcmp(sub, "set") != 0) {
		vigilctl_usage("get [KEY] | set KEY VALUE");
		goto out_usage;
	}
	first = vigilctl_opts(argc - 1, argv + 1, &cli, NULL, 0, NULL, NULL);
	if (first < 0)
		goto out_usage;
	first += 1;
	int n = argc - first;
	if (strcmp(sub, "get") == 0 ? n > 1 : n != 2) {
		vigilctl_usage("%s: %s", sub, strcmp(sub, "get") == 0 ? "at most one KEY" : "needs KEY VALUE");
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
