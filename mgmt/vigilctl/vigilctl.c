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

#include "vigilctl_int.h"

struct verb {
	const char *name;
	int (*run)(int argc, char **argv);   /* argv[0] is the verb */
	const char *help;
};

static const struct verb verbs[] = {
	{"faces", vigilctl_faces, "faces [--json] [--tiny | --tiled] [--models DIR] IMAGE...  find, align and describe faces in still images"},
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
	fprintf(f, "usage: vigilctl VERB [ARGS...]\nverbs:\n");
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(f, "  %s\n", verbs[i].help);
}

static bool is_help(const char *arg)
{
	return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

int main(int argc, char **argv)
{
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
		/* Answered here, before the verb parses anything: help never needs vigild or the model. */
		if (argc >= 3 && is_help(argv[2])) {
			printf("usage: vigilctl %s\n", verbs[i].help);
			return 0;
		}
		return verbs[i].run(argc - 1, argv + 1);
	}
	fprintf(stderr, "vigilctl: unknown verb '%s' (vigilctl --help lists them)\n", argv[1]);
	return 2;
}
