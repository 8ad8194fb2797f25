/*
 * vigild: the appliance's daemon. `run` drives the pipeline over recorded captures (vigild_run.c);
 * `serve` runs the management loop: control socket, deployments, audit, metrics (vigild_serve.c).
 * main() lives here only: the components never print or exit.
 */
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "vg_config.h"
#include "vigild_int.h"

static const struct verb {
	const char *name;
	int (*main)(int argc, char **argv);
	const char *help;
} verbs[] = {
	{ "run", vigild_run_main, "run the pipeline over recorded captures and write a report" },
	{ "serve", vigild_serve_main, "run the appliance: control socket, deployments, audit, metrics (--config FILE)" },
	{ "sample-config", vigild_sample_config_main, "print the commented configuration with every default" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vigild VERB [ARGS...]   (vigild VERB --help for its arguments; vigild --version)\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %-13s %s\n", verbs[i].name, verbs[i].help);
}

int main(int argc, char **argv)
{
	/* Invariant 1: frames and crops never reach a core dump, and no other process may ptrace us. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		fprintf(stderr, "vigild: cannot mark the process undumpable\n");
		return 1;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	/* --version anywhere (before a "--"), as vigilctl takes it: nothing else is read or started. */
	for (int a = 1; a < argc && strcmp(argv[a], "--") != 0; a++)
		if (!strcmp(argv[a], "--version")) {
			printf("vigild %s\n", VG_VERSION);
			return 0;
		}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(argv[1], verbs[i].name))
			return verbs[i].main(argc - 1, argv + 1);
	fprintf(stderr, "vigild: unknown verb '%s' (vigild --help lists them)\n", argv[1]);
	return 2;
}
