/*
 * vigilctl watchlist add|list|show|remove|purge: watchlists as vigild's records (mgmt_watchlist.c).
 * `add FILE --name N` hands an imported file to vigild by descriptor (vigild, its capabilities
 * dropped, could not open a file of the operator's) and, once vigild holds its copy, overwrites
 * and unlinks FILE: the watchlist then lives only in vigild's custody, where a deployment's end
 * can purge it. `import` (vigilctl_watchlist_import.c) with --name does the same without writing a file.
 * Text for people, --json for programs; one-line errors, exit 1 (vigild said no) or 2 (usage).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "vg_config.h"
#include "mgmt_ctl.h"
#include "vg_base.h"
#include "vg_file.h"
#include "vigilctl_int.h"

/* Send VERB with ARGS (stolen) and FDS to SOCKET (NULL: $VIGIL_SOCKET or the default). */
static int call(const char *socket, const char *verb, json_t *args, const int *fds, unsigned n_fds, json_t **result)
{
	struct cli cli = { .socket = socket }; /* timeout 0: --timeout anywhere, else $VIGIL_TIMEOUT or 30 s */

	return vigilctl_call_fds(&cli, verb, args, fds, n_fds, result);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void print_record(json_t *w)
{
	char when[32];
	time_t t = (time_t)(json_integer_value(json_object_get(w, "created_ns")) / 1000000000);
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%SZ", gmtime_r(&t, &tm));
	printf("%-6s %-8s %-28s threshold %.2f  %lld subjects  added by %s %s  sha256 %.16s\n", str(w, "id"),
	       str(w, "state"), str(w, "name"), json_real_value(json_object_get(w, "threshold")),
	       (long long)json_integer_value(json_object_get(w, "subjects")), str(w, "created_by"), when, str(w, "sha256"));
}

/* Register the file at FD (and crops at FACES_FD, or -1) as NAME; 0 with *RESULT, or 1 after saying why. */
int vigilctl_watchlist_register(const char *socket, int fd, int faces_fd, const char *name, double threshold,
				json_t **result)
{
	int fds[2] = { fd, faces_fd };
	json_t *args = json_pack("{s:s}", "name", name);

	if (threshold > 0)
		json_object_set_new(args, "threshold", json_real(threshold));
	return call(socket, "watchlist.add", args, fds, faces_fd >= 0 ? 2 : 1, result);
}

void vigilctl_watchlist_print_registered(json_t *r)
{
	printf("watchlist %s registered: \"%s\", %lld subjects, threshold %.2f, %s, sha256 %s\n", str(r, "id"),
		       str(r, "name"), (long long)json_integer_value(json_object_get(r, "subjects")),
		       json_real_value(json_object_get(r, "threshold")),
		       json_is_true(json_object_get(r, "enrolment_crops")) ? "enrolment crops kept encrypted"
									 : "no enrolment crops",
		       str(r, "sha256"));
}

static int usage(void)
{
	return vigilctl_usage("import|add|list|show|remove|purge");
}

/* A records sub-command's command line, parsed once. */
struct wl_cmd {
	const char *sub, *socket, *name, *reason;
	const char *pos; /* the first positional argument, or NULL */
	int npos;
	double threshold;
	bool json;
};

/* Parse the options after the sub-command into W; 0, or 2 after one line on stderr. */
static int wl_parse(int argc, char **argv, struct wl_cmd *w)
{
	enum { O_SOCKET = 1, O_JSON, O_NAME, O_THRESHOLD, O_REASON };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, O_SOCKET },     { "json", no_argument, NULL, O_JSON },
		{ "name", required_argument, NULL, O_NAME },         { "threshold", required_argument, NULL, O_THRESHOLD },
		{ "reason", required_argument, NULL, O_REASON },     { NULL, 0, NULL, 0 },
	};
	int c;

	w->json = vigilctl_global.json; /* main() took --json and --socket wherever they stood */
	w->socket = vigilctl_global.socket;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc - 1, argv + 1, ":", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case O_SOCKET: w->socket = optarg; break;
		case O_JSON: w->json = true; break;
		case O_NAME: w->name = optarg; break;
		case O_REASON: w->reason = optarg; break;
		case O_THRESHOLD:
			w->threshold = strtod(optarg, &end);
			if (*end || !(w->threshold > 0 && w->threshold <= MGMT_WATCHLIST_L2_MAX))
				return vigilctl_usage("%s: --threshold '%s' is outside (0, %.0f], the range of an L2 distance",
						      w->sub, optarg, MGMT_WATCHLIST_L2_MAX);
			break;
		case ':':
			return vigilctl_usage("%s: %s needs a value", w->sub, argv[optind]);
		default:
			return vigilctl_usage("%s: unknown option '%s'", w->sub, argv[optind]);
		}
	}
	int first = optind + 1; /* getopt saw argv + 1 */
	w->npos = argc - first;
	w->pos = w->npos > 0 ? argv[first] : NULL;
	return 0;
}

/* add FILE --name N: register FILE with vigild, then scrub the operator's copy. */
static int wl_add(const struct wl_cmd *w)
{
	json_t *r = NULL;
	int rc, c;

	if (w->npos != 1 || !w->name)
		return vigilctl_usage("add FILE --name N [--threshold T]");
	/* O_NONBLOCK, then a regular file only: a FIFO or device is refused, never waited on. */
	struct stat st;
	int fd = open(w->pos, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		fprintf(stderr, "vigilctl: %s: %s\n", w->pos, vg_strerror(-errno));
		if (fd >= 0)
			close(fd);
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "vigilctl: %s: not a regular file (a FIFO, device or folder is refused)\n", w->pos);
		close(fd);
		return 1;
	}
	rc = vigilctl_watchlist_register(w->socket, fd, -1, w->name, w->threshold, &r);
	close(fd);
	if (rc == 0) {
		if (w->json)
			vigilctl_print_json(r);
		else
			vigilctl_watchlist_print_registered(r);
		json_decref(r);
	}
	/* the operator's copy goes once vigild holds its own */
	if (rc == 0 && (c = vg_file_scrub(w->pos)) < 0)
		fprintf(stderr, "vigilctl: warning: %s is registered but could not be deleted here: %s\n", w->pos,
			vg_strerror(c));
	return rc;
}

static int wl_list(const struct wl_cmd *w)
{
	json_t *r;

	if (w->npos)
		return usage();
	if (call(w->socket, "watchlist.list", NULL, NULL, 0, &r))
		return 1;
	if (w->json) {
		vigilctl_print_json(r);
	} else {
		size_t i;
		json_t *v;
		json_array_foreach(json_object_get(r, "watchlists"), i, v)
			print_record(v);
	}
	json_decref(r);
	return 0;
}

static int wl_show(const struct wl_cmd *w)
{
	json_t *r;

	if (w->npos != 1)
		return vigilctl_usage("show ID");
	if (call(w->socket, "watchlist.show", json_pack("{s:s}", "id", w->pos), NULL, 0, &r))
		return 1;
	if (w->json) {
		vigilctl_print_json(r);
	} else {
		size_t i;
		json_t *v;

		print_record(r);
		if (json_is_string(json_object_get(r, "ended_by")))
			printf("       %s by %s: %s; its files were deleted\n", str(r, "state"), str(r, "ended_by"),
			       str(r, "end_reason"));
		if (json_object_get(r, "seal_ok") && !json_is_true(json_object_get(r, "seal_ok")))
			printf("       FILE DOES NOT MATCH ITS SEAL: %s\n", str(r, "file_error"));
		printf("       deployments:");
		json_array_foreach(json_object_get(r, "deployments"), i, v)
			printf(" %lld", (long long)json_integer_value(v));
		printf("%s\n", json_array_size(json_object_get(r, "deployments")) ? "" : " none");
		json_array_foreach(json_object_get(r, "subject_ids"), i, v)
			printf("       subject %s\n", json_string_value(v));
	}
	json_decref(r);
	return 0;
}

/* remove ID --reason R | purge [ID] [--reason R]: vigild overwrites the files, keeps the record. */
static int wl_end(const struct wl_cmd *w)
{
	bool purge = w->sub[0] == 'p';
	json_t *args = json_object(), *r;

	if ((purge ? w->npos > 1 : w->npos != 1) || (!purge && !w->reason)) {
		json_decref(args);
		return vigilctl_usage("remove ID --reason R | purge [ID] [--reason R]");
	}
	if (w->pos)
		json_object_set_new(args, "id", json_string(w->pos));
	if (w->reason)
		json_object_set_new(args, "reason", json_string(w->reason));
	if (call(w->socket, purge ? "watchlist.purge" : "watchlist.remove", args, NULL, 0, &r))
		return 1;
	if (w->json) {
		vigilctl_print_json(r);
	} else if (!purge) {
		printf("watchlist %s removed: its files overwritten and deleted, its record kept\n", w->pos);
	} else {
		size_t i, n = json_array_size(json_object_get(r, "purged"));
		json_t *v;

		json_array_foreach(json_object_get(r, "purged"), i, v)
			printf("watchlist %s purged: its files overwritten and deleted, its record kept\n",
			       json_string_value(v));
		if (!n)
			printf("no watchlist to purge: every live one is named by an authorised or active deployment\n");
	}
	json_decref(r);
	return 0;
}

int vigilctl_watchlist(int argc, char **argv)
{
	struct wl_cmd w = { 0 };

	if (argc < 2)
		return usage();
	w.sub = argv[1];
	if (strcmp(w.sub, "import") == 0) {
#ifdef HAVE_VIGIL_MATCHER
		return vigilctl_watchlist_import(argc, argv);
#else
		fprintf(stderr, "vigilctl: watchlist import: this vigilctl was built without the matcher\n");
		return 2;
#endif
	}
	if (wl_parse(argc, argv, &w))
		return 2;
	if (strcmp(w.sub, "add") == 0)
		return wl_add(&w);
	if (strcmp(w.sub, "list") == 0)
		return wl_list(&w);
	if (strcmp(w.sub, "show") == 0)
		return wl_show(&w);
	if (strcmp(w.sub, "remove") == 0 || strcmp(w.sub, "purge") == 0)
		return wl_end(&w);
	return vigilctl_usage("unknown sub-command '%s'", w.sub);
}
