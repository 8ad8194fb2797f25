/*
 * vigilctl retention [show] | set: how many days vigild keeps evidence by review outcome
 * (mgmt_settings.c), over the control socket. set is admin's and kept in vigild's database, so it
 * survives a restart.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vigilctl_int.h"

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
		vigilctl_usage("'%s' is not a number of days (0 to 3650)", arg);
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
		return vigilctl_usage("[show] | set --confirmed D --rejected D --unreviewed D");
	}
	/* "retention --json" is "retention show --json": argv[0] stands in for the sub-command. */
	int skip = argc >= 2 && argv[1][0] != '-' ? 1 : 0;
	first = vigilctl_opts(argc - skip, argv + skip, &cli, opts, set ? 3 : 0, retention_opt, &o);
	if (first < 0)
		return 2;
	if (first != argc - skip) {
		return vigilctl_usage("unexpected argument '%s'", argv[first + skip]);
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
		vigilctl_usage("set: give --confirmed, --rejected and/or --unreviewed DAYS");
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
