/*
 * vigilctl: Vigil's command line. One verb per file (meson.build beside this file); this file is only the
 * verb table and main(). Every verb prints text for people and --json for programs, and exits
 * non-zero with a one-line reason on error (DESIGN.md "Contracts"). The table is also the help:
 * `vigilctl --help` lists every verb's line, `vigilctl VERB --help` prints the one, so the two
 * cannot drift apart from each other or from the verbs.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vg_config.h"
#include "vigilctl_int.h"

struct cli vigilctl_global;
const char *vigilctl_verb = "";

struct verb {
	const char *name;
	int (*run)(int argc, char **argv);   /* argv[0] is the verb */
	const char *help;
};

static const struct verb verbs[] = {
	{"faces", vigilctl_faces, "faces [--json] [--tiny | --tiled] [--models DIR] IMAGE...  find, align and describe faces in still images"},
	{"model", vigilctl_model, "model [--json] [--models DIR]  which face model this is, and the false alerts its calibration supports"},
	{"status", vigilctl_status, "status [--json]  what vigild runs, and who you are to it"},
	{"deployment", vigilctl_deployment,
	 "deployment create --name N --use-case crime-hotspot|protective-security|sought-persons --location L\n"
	 "             --start T --end T --justification J --watchlist ID[@SEAL]...   request a deployment of\n"
	 "             watchlists vigild holds, each bound by its seal (a bare ID: the seal it has now, printed)\n"
	 "  deployment authorise|refuse ID --reasons R   decide on it (authorisers; not its requester)\n"
	 "  deployment withdraw ID --reason R   withdraw your own request before it starts\n"
	 "  deployment start ID | stop ID --reason R | show ID | list   [--json]   (T: now, +8h, 2026-11-22T09:00Z)"},
	{"watchlist", vigilctl_watchlist,
	 "watchlist import (--name N | --out FILE) [--id N] [--threshold T] [--models DIR] [--json] (DIR | --csv FILE)\n"
	 "             embed enrolment images (one clear face each): registered with vigild, or into a file\n"
	 "  watchlist add FILE --name N | list | show ID | remove ID --reason R | purge [ID]   [--json]\n"
	 "             watchlists as vigild's records; add moves FILE into vigild's custody"},
	{"alert", vigilctl_alert,
	 "alert list [--unreviewed] | show ID | review ID --confirm|--reject --note N   [--json]  (operators decide)\n"
	 "  alert evidence ID --out FILE [--state-dir DIR]   export the alert's face crop from the encrypted store\n"
	 "  alert show ID --out FILE [--state-dir DIR]   the evidence crop beside the enrolment crop, one JPEG"},
	{"audit", vigilctl_audit, "audit list [--since SEQ] | verify [--public-key KEY]   [--json]  the hash-chained audit log\n"
	 "  audit export [--out FILE]   the whole chain with its hashes and signed head, as JSON lines\n"
	 "  audit verify --export FILE [--public-key KEY]   check an export offline, without vigild"},
	{"camera", vigilctl_camera,
	 "camera add ID --url rtsp://[user:pw@]host/path|- [--location L] [--fps N] | remove ID   (admin)\n"
	 "  camera list | probe ID [--seconds N]   [--json]  (URLs are shown without their credentials)"},
	{"config", vigilctl_config, "config get [KEY] | set KEY VALUE   [--json]  vigild's settings; set is admin's, kept across restarts"},
	{"retention", vigilctl_retention,
	 "retention [show] | set [--confirmed D] [--rejected D] [--unreviewed D]   [--json]  evidence kept, in days"},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: vigilctl [--json] [--socket PATH] [--timeout S] VERB [ARGS...]   (those three, and --version,\n"
		   "       anywhere on the line; vigilctl VERB --help for one verb)\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %s\n", verbs[i].help);
}

static bool is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* "--NAME VALUE" or "--NAME=VALUE" at ARGV[*I]: the value (and *I past it), NULL when ARGV[*I] is
 * not --NAME; *MISSING when it is but no value follows. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		*missing = true;
		return NULL;
	}
	return argv[++*i];
}

/*
 * Take --json, --socket PATH, --timeout S and --version out of ARGV wherever they stand (before
 * or after the verb and its sub-command, up to a "--"), into vigilctl_global: a verb's own parser
 * then never has to know where a person put them. Returns the new argc, -1 for --version, or -2
 * after one line on stderr.
 */
static int take_global_opts(int argc, char **argv)
{
	int out = 1, i;

	for (i = 1; i < argc; i++) {
		bool missing = false;
		const char *v;

		if (strcmp(argv[i], "--") == 0)
			break;
		if (strcmp(argv[i], "--version") == 0)
			return -1;
		if (strcmp(argv[i], "--json") == 0) {
			vigilctl_global.json = true;
		} else if ((v = opt_value(argc, argv, &i, "--socket", &missing))) {
			vigilctl_global.socket = v;
		} else if ((v = opt_value(argc, argv, &i, "--timeout", &missing))) {
			if (!(vigilctl_global.timeout_ms = vigilctl_parse_timeout(v))) {
				fprintf(stderr, "vigilctl: --timeout '%.32s' is not a number of seconds from 1 to 3600 "
						"(vigilctl --help)\n", v);
				return -2;
			}
		} else if (missing) {
			fprintf(stderr, "vigilctl: %s needs a value (vigilctl --help)\n", argv[i]);
			return -2;
		} else {
			argv[out++] = argv[i];
		}
	}
	while (i < argc)
		argv[out++] = argv[i++];
	argv[out] = NULL;
	return out;
}

int main(int argc, char **argv)
{
	if ((argc = take_global_opts(argc, argv)) < 0) {
		if (argc == -2)
			return 2;
		printf("vigilctl %s\n", VG_VERSION);
		return 0;
	}
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (is_help(argv[1]) || strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strcmp(argv[1], verbs[i].name) != 0)
			continue;
		/* Answered here, before the verb parses anything: help never needs vigild or the model.
		 * --help anywhere after the verb (up to a "--") is the verb's help. */
		for (int a = 2; a < argc && strcmp(argv[a], "--") != 0; a++)
			if (is_help(argv[a])) {
				printf("usage: vigilctl %s\n", verbs[i].help);
				return 0;
			}
		vigilctl_verb = verbs[i].name;
		return verbs[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "vigilctl: unknown verb '%s' (vigilctl --help lists them)\n", argv[1]);
	return 2;
}
