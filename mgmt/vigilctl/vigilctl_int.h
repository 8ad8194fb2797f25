/*
 * vigilctl's helpers for the verb files that talk to vigild (defined in vigilctl_ctl.c): the
 * common options (--socket, --json), one request and its reply, and printing.
 */
#ifndef VIGILCTL_INT_H
#define VIGILCTL_INT_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cli {
	const char *socket;
	bool json;
};

/* Send VERB with ARGS (stolen); on success *RESULT is the reply's result (the caller decrefs).
 * Returns 0, or 1 after printing vigild's one-line reason. */
int vigilctl_call(const struct cli *cli, const char *verb, json_t *args, json_t **result);
/* vigilctl_call() that also hands vigild N_FDS open descriptors (files it could not open itself). */
int vigilctl_call_fds(const struct cli *cli, const char *verb, json_t *args, const int *fds, unsigned n_fds,
		      json_t **result);
int vigilctl_print_json(json_t *j);
/* Parse --socket, --json and EXTRA (ON_OPT gets their vals; it returns -2 once it said why).
 * Returns optind, or -1 after one line on stderr. */
int vigilctl_opts(int argc, char **argv, struct cli *cli, const struct option *extra, size_t n_extra,
		  int (*on_opt)(int opt, const char *arg, void *ctx), void *ctx);
void vigilctl_fmt_time(long long t, char *buf, size_t len);

struct mgmt_db;
struct mgmt_alert;
/*
 * What `alert evidence` and `alert show` share (vigilctl_alert_evidence.c): parse ID --out FILE
 * [--state-dir DIR], open the database under DIR and read the alert. Returns 0 with every OUT set
 * (the caller closes *DB); 1 after one line on stderr; 2 on a usage error (the caller prints its
 * usage).
 */
int vigilctl_alert_open(int argc, char **argv, const char **state, const char **out, long long *id,
			struct mgmt_db **db, struct mgmt_alert *a);

#endif /* VIGILCTL_INT_H */
