/*
 * vigild serve [--config FILE]: run the appliance's management loop (mgmt_daemon_run) with the
 * configuration FILE (default /etc/vigil/vigild.conf if it exists, else the built-in defaults);
 * SIGHUP re-reads FILE. vigild sample-config prints the commented configuration with every
 * setting and its default, from the same tables that parse it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mgmt_daemon.h"
#include "vg_config.h"
#ifdef HAVE_VIGIL_MGMT_PIPELINE
#include "pipeline_evidence.h"
#endif
#include "vg_conf.h"
#include "vigild_int.h"


static const struct vg_conf_table *const tables[] = { &mgmt_daemon_conf_table };

int vigild_sample_config_main(int argc, char **argv)
{
	struct mgmt_daemon_conf conf;
	void *objs[] = { &conf };
	struct vg_conf_set set = { tables, objs, 1 };

	(void)argc;
	(void)argv;
	return vg_conf_write_sample(&set, stdout) == 0 ? 0 : 1;
}

int vigild_serve_main(int argc, char **argv)
{
	static const struct option opts[] = { { "config", required_argument, NULL, 'c' },
					       { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *path = access("/etc/vigil/vigild.conf", R_OK) == 0 ? "/etc/vigil/vigild.conf" : NULL;
	struct mgmt_daemon_conf conf;
	void *objs[] = { &conf };
	struct vg_conf_set set = { tables, objs, 1 };
	char err[512];
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		if (c == 'c') {
			path = optarg;
		} else if (c == 'h') {
			printf("usage: vigild serve [--config FILE]\nsettings (FILE holds name = value lines):\n");
			vg_conf_write_help(&set, stdout);
			return 0;
		} else {
			fprintf(stderr, "vigild: serve: bad option (vigild serve --help)\n");
			return 2;
		}
	}
	if (vg_conf_set_defaults(&set, err, sizeof(err)) < 0 ||
	    (path && vg_conf_load_file(&set, path, false, err, sizeof(err)) < 0)) {
		fprintf(stderr, "vigild: %s\n", err);
		return 1;
	}
	conf.probe = vigild_camera_probe;
#ifdef HAVE_VIGIL_MGMT_PIPELINE
	/* Reviews set the evidence's retention in the store (vigil_outcome.h). */
	conf.outcome = pipeline_outcomes_hook;
	conf.outcome_arg = conf.state_dir;
#else
	conf.outcome = NULL;
	conf.outcome_arg = NULL;
#endif
	if (mgmt_daemon_run(&conf, path, err, sizeof(err)) < 0) {
		fprintf(stderr, "vigild: %s\n", err);
		return 1;
	}
	return 0;
}
