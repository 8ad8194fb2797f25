/*
 * vigilctl's own header: the verbs that vigilctl.c's table dispatches to, one file each, and
 * what they share (vigilctl_util.c): the common options (--socket, --json), one request and its
 * reply, and printing. A verb returns the exit status: 0, 1 (it failed, or vigild said no; one
 * line on stderr said why) or 2 (bad usage).
 */
#ifndef VIGILCTL_INT_H
#define VIGILCTL_INT_H

#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "vg_base.h"

/* ---- the verbs (argv[0] is the verb) ----------------------------------------------------------- */
int vigilctl_faces(int argc, char **argv);
int vigilctl_model(int argc, char **argv);            /* vigilctl_faces.c */
int vigilctl_status(int argc, char **argv);           /* vigilctl_status.c */
int vigilctl_deployment(int argc, char **argv);       /* vigilctl_deployment.c */
int vigilctl_watchlist(int argc, char **argv);        /* vigilctl_watchlist.c: add|list|show|remove|purge */
int vigilctl_watchlist_import(int argc, char **argv); /* vigilctl_watchlist_import.c (HAVE_VIGIL_MATCHER) */
int vigilctl_alert(int argc, char **argv);            /* vigilctl_alert.c */
int vigilctl_alert_evidence(int argc, char **argv);   /* vigilctl_alert_evidence.c (HAVE_VIGIL_MGMT_PIPELINE) */
int vigilctl_alert_show_out(int argc, char **argv);   /* vigilctl_alert_show.c (HAVE_VIGIL_MGMT_PIPELINE) */
int vigilctl_audit(int argc, char **argv);            /* vigilctl_audit.c */
int vigilctl_camera(int argc, char **argv);           /* vigilctl_camera.c */
int vigilctl_config(int argc, char **argv);           /* vigilctl_config.c */
int vigilctl_retention(int argc, char **argv);        /* vigilctl_retention.c */

/* ---- talking to vigild (vigilctl_util.c) -------------------------------------------------------- */
struct cli {
	const char *socket;
	bool json;
	bool data;           /* the reply is data written out as it is (audit export): no terminal escaping */
	unsigned timeout_ms; /* for each call to vigild: --timeout S, else $VIGIL_TIMEOUT, else 30 s (0: that default) */
};

/* Send VERB with ARGS (stolen); on success *RESULT is the reply's result (the caller decrefs).
 * Returns 0, or 1 after printing vigild's one-line reason. */
int vigilctl_call(const struct cli *cli, const char *verb, json_t *args, json_t **result);
/* vigilctl_call() that also hands vigild N_FDS open descriptors (files it could not open itself). */
int vigilctl_call_fds(const struct cli *cli, const char *verb, json_t *args, const int *fds, unsigned n_fds,
		      json_t **result);
/* The options that may stand anywhere on the line (--socket, --json, --timeout), which main()
 * takes out of argv before the verb runs (vigilctl.c); socket NULL, timeout_ms 0: not given.
 * vigilctl_opts() and vigilctl_call() start from these. */
extern struct cli vigilctl_global;
/* "30" seconds, 1 to 3600, as ms; 0 when it is not that. */
unsigned vigilctl_parse_timeout(const char *s);
/* The face model's folder: OPT (--models), else $VIGIL_MODELS, else fetched/face-api-1.7.15/model
 * under the current directory (where tools/bootstrap puts it): one spelling for every verb, as
 * for `vigild run`. */
const char *vigilctl_models(const char *opt);
/* The verb being run (main() sets it), for the lines below. */
extern const char *vigilctl_verb;
/* One line, "vigilctl: VERB: <what> (vigilctl VERB --help)", for a usage error; returns 2, the exit
 * status of every usage error. */
int vigilctl_usage(const char *fmt, ...) VG_PRINTF(1, 2);
/* Open --out PATH for writing: created, mode 0600; an existing file is never overwritten, and a
 * FIFO, device or folder is refused at once. The fd, or -1 after one line on stderr (exit 1). */
int vigilctl_out_open(const char *path);
int vigilctl_print_json(json_t *j);
/* TEXT with every control character as \xNN and backslashes doubled (malloc'd; NULL on ENOMEM):
 * vigilctl_call() applies it to every string of a reply before a verb prints it as text. */
char *vigilctl_terminal_text(const char *text);
/* Parse --socket, --json, --timeout and EXTRA (ON_OPT gets their vals; it returns -2 once it said why).
 * Returns optind, or -1 after one line on stderr. */
int vigilctl_opts(int argc, char **argv, struct cli *cli, const struct option *extra, size_t n_extra,
		  int (*on_opt)(int opt, const char *arg, void *ctx), void *ctx);
/* ARGV[FIRST], if present, is WHAT's id (a positive integer) and goes into ARGS as "id"; more is
 * an error. Returns 0, or -1 after one line on stderr. */
int vigilctl_positional_id(int argc, char **argv, int first, const char *what, const char *sub, json_t *args);
/* "now", "+8h", "+30m", Unix seconds, or "YYYY-MM-DDTHH:MM[:SS]" in UTC. -1 when unreadable. */
long long vigilctl_parse_time(const char *s);
/* T (Unix seconds) as "YYYY-MM-DD HH:MM:SSZ". */
void vigilctl_fmt_time(long long t, char *buf, size_t len);

/* ---- what the watchlist verbs share (vigilctl_watchlist.c) -------------------------------------- */
/* Register the file at FD (and crops at FACES_FD, or -1) as NAME with vigild at SOCKET (NULL:
 * $VIGIL_SOCKET or the default); 0 with *RESULT, or 1 after saying why. */
int vigilctl_watchlist_register(const char *socket, int fd, int faces_fd, const char *name, double threshold,
				json_t **result);
void vigilctl_watchlist_print_registered(json_t *r);

/* ---- what `alert evidence` and `alert show --out` share (vigilctl_alert_evidence.c) ------------- */
struct mgmt_db;
struct mgmt_alert;
/*
 * Parse ID --out FILE [--state-dir DIR], open the database under DIR and read the alert. Returns
 * 0 with every OUT set (the caller closes *DB); 1 after one line on stderr; 2 on a usage error
 * (the caller prints its usage).
 */
int vigilctl_alert_open(int argc, char **argv, const char **state, const char **out, long long *id,
			struct mgmt_db **db, struct mgmt_alert *a);

#endif /* VIGILCTL_INT_H */
