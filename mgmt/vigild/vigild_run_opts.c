/*
 * `vigild run`'s options: one table of every option with where its value goes and its range, from
 * which getopt's list, the checks and the one-line errors all come; the few options with a form
 * of their own (--decode, --rtsp, --rtsp-file, --ip, --gpu-max-frame) have a handler each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vg_base.h"
#include "vg_file.h"
#include "vigild_run_int.h"

#define RTSP_FILE_MAX (64u << 10)

enum opt_kind {
	OPT_STRING,   /* const char * */
	OPT_SET,      /* bool set to true */
	OPT_CLEAR,    /* bool set to false */
	OPT_UINT,     /* unsigned in [min, max] */
	OPT_INT64,    /* int64_t in [min, max] */
	OPT_SPECIAL,  /* a handler of its own */
};

struct run_opt {
	const char *name;
	enum opt_kind kind;
	size_t offset;        /* into struct run_args */
	long long min, max;   /* OPT_UINT, OPT_INT64 */
	const char *range;    /* how the error names the range; NULL: none */
};

#define ARG(field) offsetof(struct run_args, field)

static const struct run_opt run_opts[] = {
	{ "pcap", OPT_STRING, ARG(pcap), 0, 0, NULL },
	{ "iface", OPT_STRING, ARG(iface), 0, 0, NULL },
	{ "sdp", OPT_STRING, ARG(sdp_path), 0, 0, NULL },
	{ "report", OPT_STRING, ARG(report_path), 0, 0, NULL },
	{ "framemd5", OPT_STRING, ARG(md5_path), 0, 0, NULL },
	{ "metrics-file", OPT_STRING, ARG(metrics_path), 0, 0, NULL },
	{ "until-eof", OPT_SET, ARG(conf.until_eof), 0, 0, NULL },
	{ "no-decode", OPT_CLEAR, ARG(conf.decode), 0, 0, NULL },
	{ "rx-only", OPT_SET, ARG(conf.rx_only), 0, 0, NULL },
	{ "tx-pcap", OPT_STRING, ARG(conf.tx_pcap), 0, 0, NULL },
	{ "eal", OPT_STRING, ARG(conf.eal_extra), 0, 0, NULL },
	{ "seconds", OPT_UINT, ARG(conf.seconds), 1, 86400, NULL },
	{ "decode-workers", OPT_UINT, ARG(conf.decode_workers), 0, 16, "0..16" },
	{ "reorder-ms", OPT_UINT, ARG(conf.reorder.window_ms), 0, 10000, NULL },
	{ "reorder-packets", OPT_UINT, ARG(conf.reorder.max_held), 1, 1000, NULL },
	{ "rtsp-port", OPT_UINT, ARG(rtsp_port), 1024, 60000, "1024..60000" },
	{ "watchlist", OPT_STRING, ARG(pconf.watchlist_path), 0, 0, NULL },
	{ "models", OPT_STRING, ARG(pconf.models_dir), 0, 0, NULL },
	{ "state-dir", OPT_STRING, ARG(pconf.state_dir), 0, 0, NULL },
	{ "deployment", OPT_INT64, ARG(pconf.deployment), 1, INT64_MAX, NULL },
	{ "analysis-fps", OPT_UINT, ARG(pconf.analysis_fps), 1, 60, NULL },
	{ "analysis-queue", OPT_UINT, ARG(pconf.queue_depth), 1, 64, NULL },
	{ "tiled", OPT_SET, ARG(pconf.tiled), 0, 0, NULL },
	{ "track-fusion", OPT_UINT, ARG(pconf.track_fusion), 0, PIPELINE_FUSION_MAX, "0..8" },
	{ "progress", OPT_SET, ARG(pconf.progress), 0, 0, NULL },
	{ "drop-when-behind", OPT_SET, ARG(drop_when_behind), 0, 0, NULL },
	{ "gpu", OPT_STRING, ARG(pconf.gpu), 0, 0, NULL },
	{ "batch", OPT_UINT, ARG(pconf.batch), 1, 64, "1..64" },
	{ "batch-deadline-ms", OPT_UINT, ARG(pconf.batch_deadline_ms), 1, 1000, "1..1000" },
	{ "decode", OPT_SPECIAL, 0, 0, 0, NULL },
	{ "rtsp", OPT_SPECIAL, 0, 0, 0, NULL },
	{ "rtsp-file", OPT_SPECIAL, 0, 0, 0, NULL },
	{ "ip", OPT_SPECIAL, 0, 0, 0, NULL },
	{ "gpu-max-frame", OPT_SPECIAL, 0, 0, 0, NULL },
	{ "help", OPT_SPECIAL, 0, 0, 0, NULL },
};

int run_split_list(char *list, const char **out, size_t max, unsigned *n, const char *what)
{
	for (char *save, *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (*n >= max) {
			fprintf(stderr, "vigild run: at most %zu %s\n", max, what);
			return -1;
		}
		out[(*n)++] = t;
	}
	return 0;
}

/* --decode cpu|cuda|cuda:N into CONF. -1 for anything else. */
static int parse_decode(const char *v, struct dp_run_conf *conf)
{
	char *end;

	if (strcmp(v, "cpu") == 0) {
		conf->decode_cuda = false;
		return 0;
	}
	if (strcmp(v, "cuda") == 0) {
		conf->decode_cuda = true;
		conf->cuda_device = 0;
		return 0;
	}
	if (strncmp(v, "cuda:", 5) != 0 || v[5] < '0' || v[5] > '9')
		return -1;
	unsigned long n = strtoul(v + 5, &end, 10);
	if (*end || n > 63)
		return -1;
	conf->decode_cuda = true;
	conf->cuda_device = (unsigned)n;
	return 0;
}

static void run_usage(FILE *f)
{
	fprintf(f, "usage: vigild run --pcap FILE[,FILE...] [--sdp FILE] --report report.json [--until-eof]\n"
		   "                  [--framemd5 FILE] [--reorder-ms N] [--reorder-packets N] [--no-decode]\n"
		   "                  [--decode-workers N] [--ip A.B.C.D [--tx-pcap FILE]]\n"
		   "                  [--decode cpu|cuda[:N]]   (software decode, or NVDEC on CUDA device N, default 0;\n"
		   "                  a camera NVDEC cannot take is decoded in software, and the report says why)\n"
		   "       vigild run --iface NAME[,NAME...] --seconds N ...   (net_af_packet, no DPDK NIC)\n"
		   "       vigild run --iface NAME --rtsp rtsp://[user:pass@]host[:port]/path [--rtsp ...] [--rtsp-port N] ...\n"
		   "       vigild run --iface NAME --rtsp-file FILE ...   (one URL a line: no credentials on the command line)\n"
		   "                  [--rx-only] [--eal 'EAL ARGS']\n"
		   "  analysis:       [--models DIR] [--analysis-fps N] [--tiled] [--progress]   (faces detected and counted)\n"
		   "                  [--analysis-queue N] [--drop-when-behind]   (frames queued per camera; a capture\n"
		   "                  waits for the analysis unless --drop-when-behind, live cameras drop the newest)\n"
		   "                  [--gpu cpu|cuda|cuda-fp16|cuda-exact|emulate]   (where the face pipeline and the matcher\n"
		   "                  run; default cpu; with --decode cuda, NVDEC's frames stay on the GPU; emulate:\n"
		   "                  the GPU path on the CPU, to check it where there is no GPU, slow)\n"
		   "                  [--batch N] [--batch-deadline-ms N]   (frames of all cameras per batch of the\n"
		   "                  nets, 1..64: default 1 on the CPU, 32 on a GPU; a batch waits 10 ms at most)\n"
		   "                  [--gpu-max-frame WxH]   (the largest frame the GPU takes, default 3840x2160)\n"
		   "  metrics:        [--metrics-file PATH]   (Prometheus text, rewritten every 2 s)\n"
		   "  matching:       [--track-fusion N]   (also match each track's best N sightings fused into one\n"
		   "                  descriptor, when a sighting alone does not match; 0..8; 0 or 1: off)\n"
		   "                  --state-dir DIR --deployment ID   (an authorised, active deployment: its watchlists\n"
		   "                  come from vigild's custody by the seals its authorisation bound; --watchlist FILE\n"
		   "                  may only name one of those custody files)\n");
}

/*
 * --rtsp-file PATH: cameras, one a line (blank lines and '#' comments skipped), appended to CAMS:
 * a URL alone, or NAME<TAB>FPS<TAB>URL[<TAB>USER<TAB>PASSWORD] (FPS 0: --analysis-fps), which is
 * how vigild serve passes the cameras it was given, credentials apart from the URL. *TEXT keeps
 * the file's bytes that CAMS point into (one file per run). Errors are one line on stderr and never
 * show a URL or a password.
 */
static int read_rtsp_file(const char *path, char **text, struct rtsp_camera *cams, unsigned *n)
{
	size_t len = 0;
	char *save = NULL;
	unsigned line_no = 0;
	int rc;

	if (*text) {
		fprintf(stderr, "vigild run: --rtsp-file given twice\n");
		return -EINVAL;
	}
	rc = vg_file_read(path, RTSP_FILE_MAX, (uint8_t **)text, &len);
	if (rc < 0) {
		fprintf(stderr, "vigild run: cannot read --rtsp-file %s: %s\n", path, vg_strerror(rc));
		return rc;
	}
	for (char *line = strtok_r(*text, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		char *field[5] = { NULL }, *end = NULL;
		unsigned nf = 0;

		line_no++;
		while (*line == ' ')
			line++;
		if (!*line || *line == '#')
			continue;
		if (*n >= MAX_RTSP) {
			fprintf(stderr, "vigild run: at most %d RTSP cameras\n", MAX_RTSP);
			return -E2BIG;
		}
		if (!strchr(line, '\t')) {
			cams[(*n)++] = (struct rtsp_camera){ .url = line };
			continue;
		}
		/* strsep, not strtok: an empty field (a user with no password, "USER<TAB>") stays a field. */
		for (char *f; (f = strsep(&line, "\t")) != NULL; nf++)
			if (nf < 5)
				field[nf] = f;
		unsigned long fps = nf >= 3 ? strtoul(field[1], &end, 10) : 61;
		if ((nf != 3 && nf != 5) || !end || *end || fps > 60 || strlen(field[0]) > 31) {
			fprintf(stderr, "vigild run: --rtsp-file line %u: not NAME<TAB>FPS<TAB>URL[<TAB>USER<TAB>PASSWORD]\n",
				line_no);
			return -EINVAL;
		}
		cams[(*n)++] = (struct rtsp_camera){ .name = field[0], .fps = (unsigned)fps, .url = field[2],
						     .user = nf == 5 ? field[3] : NULL, .password = nf == 5 ? field[4] : NULL };
	}
	return 0;
}

/* The options with a form of their own. 0, or -1 after one line on stderr. */
static int special_opt(const char *name, const char *v, struct run_args *a)
{
	if (strcmp(name, "decode") == 0) {
		if (parse_decode(v, &a->conf) == 0)
			return 0;
		fprintf(stderr, "vigild run: bad --decode value '%s' (cpu, cuda or cuda:N)\n", v);
		return -1;
	}
	if (strcmp(name, "rtsp") == 0) {
		if (a->n_rtsp >= MAX_RTSP) {
			fprintf(stderr, "vigild run: at most %d --rtsp cameras\n", MAX_RTSP);
			return -1;
		}
		a->rtsp_cams[a->n_rtsp++] = (struct rtsp_camera){ .url = v };
		return 0;
	}
	if (strcmp(name, "rtsp-file") == 0)
		/* One URL a line, from a file or an inherited descriptor (/proc/self/fd/N): vigild
		 * serve passes its cameras this way so that credentials never sit in a command line,
		 * which every local user can read in /proc. */
		return read_rtsp_file(v, &a->rtsp_file_text, a->rtsp_cams, &a->n_rtsp) < 0 ? -1 : 0;
	if (strcmp(name, "ip") == 0) {
		struct in_addr addr;
		if (inet_pton(AF_INET, v, &addr) != 1) {
			fprintf(stderr, "vigild run: bad --ip '%s' (an IPv4 address)\n", v);
			return -1;
		}
		a->conf.local_ip = addr.s_addr;
		return 0;
	}
	/* gpu-max-frame */
	unsigned w, h;
	char tail;
	if (sscanf(v, "%ux%u%c", &w, &h, &tail) != 2 || w < 16 || h < 16 || w > 16384 || h > 16384) {
		fprintf(stderr, "vigild run: bad --gpu-max-frame value '%s' (WxH, 16..16384)\n", v);
		return -1;
	}
	a->pconf.gpu_max_width = w;
	a->pconf.gpu_max_height = h;
	return 0;
}

/* OPT's value V into *A. 0, or -1 after one line on stderr naming the option and its range. */
static int set_opt(const struct run_opt *opt, const char *v, struct run_args *a)
{
	char *field = (char *)a + opt->offset, *end;
	long long n;

	switch (opt->kind) {
	case OPT_STRING: *(const char **)(void *)field = v; return 0;
	case OPT_SET: *(bool *)(void *)field = true; return 0;
	case OPT_CLEAR: *(bool *)(void *)field = false; return 0;
	case OPT_SPECIAL: return special_opt(opt->name, v, a);
	case OPT_UINT:
	case OPT_INT64:
		errno = 0;
		n = strtoll(v, &end, 10);
		if (!*v || *end || errno || n < opt->min || n > opt->max) {
			if (opt->range)
				fprintf(stderr, "vigild run: bad --%s value '%s' (%s)\n", opt->name, v, opt->range);
			else
				fprintf(stderr, "vigild run: bad --%s value '%s'\n", opt->name, v);
			return -1;
		}
		if (opt->kind == OPT_UINT)
			*(unsigned *)(void *)field = (unsigned)n;
		else
			*(int64_t *)(void *)field = n;
		return 0;
	}
	return -1;
}

int vigild_run_args(int argc, char **argv, struct run_args *a)
{
	struct option longopts[VG_ARRAY_SIZE(run_opts) + 1];
	int c;

	*a = (struct run_args){
		.conf = { .reorder = { .slots = 1024, .max_held = 256, .window_ms = 200, .clock_rate = 90000 },
			  .decode = true },
		.pconf = { .models_dir = getenv("VIGIL_MODELS") },
		.rtsp_port = 40000,
	};
	for (size_t i = 0; i < VG_ARRAY_SIZE(run_opts); i++) {
		const struct run_opt *o = &run_opts[i];
		bool flag = o->kind == OPT_SET || o->kind == OPT_CLEAR || strcmp(o->name, "help") == 0;

		longopts[i] = (struct option){ o->name, flag ? no_argument : required_argument, NULL, 256 + (int)i };
	}
	longopts[VG_ARRAY_SIZE(run_opts)] = (struct option){ 0 };
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'h' || (c >= 256 && strcmp(run_opts[c - 256].name, "help") == 0)) {
			run_usage(stdout);
			return RUN_ARGS_HELP;
		}
		if (c < 256 || c >= 256 + (int)VG_ARRAY_SIZE(run_opts)) {
			run_usage(stderr);
			return RUN_ARGS_BAD;
		}
		if (set_opt(&run_opts[c - 256], optarg, a) < 0)
			return RUN_ARGS_BAD;
	}
	if (optind != argc || (!a->pcap && !a->iface) || !a->report_path) {
		fprintf(stderr, "vigild run: --pcap (or --iface) and --report are required (vigild run --help)\n");
		return RUN_ARGS_BAD;
	}
	return RUN_ARGS_OK;
}
