/* `vigild run`: what its option parsing (vigild_run_opts.c) hands the run (vigild_run.c). */
#ifndef VIGILD_RUN_INT_H
#define VIGILD_RUN_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "dp.h"
#include "vg_base.h"
#include "vg_config.h"
#ifdef HAVE_VIGIL_MGMT_PIPELINE
#include "pipeline.h"
#else
#include "vigild_no_pipeline.h"
#endif

#define MAX_RTSP 16
struct rtsp_camera {
	const char *url, *user, *password; /* user and password NULL: the URL's own, if any */
	const char *name;                  /* NULL: cam1, cam2, ... */
	unsigned fps;                      /* 0: --analysis-fps */
};

/* Everything the command line said, checked. */
struct run_args {
	const char *pcap, *iface, *sdp_path, *report_path, *md5_path, *metrics_path;
	struct dp_run_conf conf;      /* the dataplane's part */
	struct pipeline_conf pconf;   /* the analysis's part */
	struct rtsp_camera rtsp_cams[MAX_RTSP];
	unsigned n_rtsp, rtsp_port;
	bool drop_when_behind;
	char *rtsp_file_text;         /* --rtsp-file's bytes (the cameras point into it; holds credentials) */
};

/* What the run reads its streams from, made from the arguments (vigild_run.c). */
struct run_inputs {
	char *pcap_list, *iface_list, *sdp_text;
	const char *pcaps[16], *ifaces[16];
	struct dp_sdp *sdp;
};

/* What report.json holds beyond the dataplane's report and the pipeline's figures. */
struct run_report_extra {
	unsigned rtsp_sessions;
	uint64_t rtsp_reconnects;
	uint64_t download_errors; /* frames NVDEC decoded that could not be copied to the host */
};
/* Write report.json (vigild_report.c). 0 or -errno. */
int vigild_write_report(const char *path, const struct dp_run_report *r, const struct run_report_extra *x,
			struct pipeline *pl, const char *const *names);

#define SDP_FILE_MAX (64u << 10)

enum { RUN_ARGS_OK = 0, RUN_ARGS_HELP = 1, RUN_ARGS_BAD = 2 };
/*
 * Parse ARGV into *A (defaults first) from the option table. RUN_ARGS_OK; RUN_ARGS_HELP after the
 * usage on stdout; RUN_ARGS_BAD after one line on stderr that names the option and its range.
 */
int vigild_run_args(int argc, char **argv, struct run_args *a /* OUT */);
/* Split LIST (modified) at commas into OUT[0..max); *N the count. -1 with one line if over MAX. */
int run_split_list(char *list, const char **out, size_t max, unsigned *n, const char *what);

#endif /* VIGILD_RUN_INT_H */
