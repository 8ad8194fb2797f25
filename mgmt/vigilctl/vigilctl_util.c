/*
 * What every vigilctl verb that talks to vigild shares (vigilctl_int.h): the common options
 * (--socket, --json, --timeout), one request and its reply over the control socket (mgmt_ctl_call), printing
 * JSON, and reading and writing times. Errors: one line on stderr; the caller exits 1 (vigild said
 * no) or 2 (bad usage). The socket is --socket PATH, else $VIGIL_SOCKET, else
 * /run/vigil/vigild.sock. Each call waits for vigild at most --timeout SECONDS, else
 * $VIGIL_TIMEOUT, else 30 s, then exits 1 with one line: a stuck or flooded vigild never hangs a
 * script.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mgmt_ctl.h"
#include "vigilctl_int.h"

static const char *default_socket(void)
{
	const char *env = getenv("VIGIL_SOCKET");
	return env && *env ? env : "/run/vigil/vigild.sock";
}

/*
 * TEXT as a terminal may show it: every control character (C0, DEL, and C1 in UTF-8) as \xNN, so
 * that a name, note or reason from vigild can neither clear the screen nor forge a line. A
 * backslash is doubled so the escape cannot be forged either. Returns a malloc'd string or NULL.
 */
char *vigilctl_terminal_text(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(4 * n + 1), *w = out;
	const unsigned char *s = (const unsigned char *)text;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		bool c1 = s[i] == 0xc2 && i + 1 < n && s[i + 1] >= 0x80 && s[i + 1] < 0xa0;

		if (s[i] < 0x20 || s[i] == 0x7f) {
			w += sprintf(w, "\\x%02x", s[i]);
		} else if (c1) {
			w += sprintf(w, "\\x%02x", s[++i]);
		} else if (s[i] == '\\') {
			*w++ = '\\';
			*w++ = '\\';
		} else {
			*w++ = (char)s[i];
		}
	}
	*w = '\0';
	return out;
}

static void terminal_safe(json_t *j);

/* V, a value inside a reply: a string made terminal-safe in place, anything else walked. */
static void terminal_safe_value(json_t *v)
{
	char *safe;

	if (!json_is_string(v)) {
		terminal_safe(v);
		return;
	}
	safe = vigilctl_terminal_text(json_string_value(v));
	if (safe)
		json_string_set(v, safe);
	free(safe);
}

/* Every string in J (objects and arrays, recursively) made terminal-safe, in place. */
static void terminal_safe(json_t *j)
{
	const char *key;
	json_t *v;
	size_t i;

	if (json_is_object(j)) {
		json_object_foreach(j, key, v)
			terminal_safe_value(v);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			terminal_safe_value(v);
	}
}

/* "30" seconds, 1 to 3600, as ms; 0 when it is not that. */
unsigned vigilctl_parse_timeout(const char *s)
{
	char *end;
	long v = s ? strtol(s, &end, 10) : 0;

	return s && *s && !*end && v >= 1 && v <= 3600 ? (unsigned)v * 1000u : 0;
}

int vigilctl_call_fds(const struct cli *cli, const char *verb, json_t *args, const int *fds, unsigned n_fds,
		      json_t **result)
{
	json_t *req = json_pack("{s:s, s:o}", "verb", verb, "args", args ? args : json_object());
	char *text = json_dumps(req, JSON_COMPACT), *reply = NULL, err[512];
	json_t *rep;
	int rc;

	json_decref(req);
	unsigned timeout_ms = cli->timeout_ms ? cli->timeout_ms : vigilctl_global.timeout_ms;
	if (!timeout_ms)
		timeout_ms = vigilctl_parse_timeout(getenv("VIGIL_TIMEOUT"));
	if (!timeout_ms)
		timeout_ms = MGMT_CTL_CALL_TIMEOUT_MS;
	const char *socket = cli->socket ? cli->socket : vigilctl_global.socket;
	rc = mgmt_ctl_call_fds(socket ? socket : default_socket(), text, fds, n_fds, timeout_ms, &reply,
			       err, sizeof(err));
	free(text);
	if (rc < 0) {
		fprintf(stderr, "vigilctl: %s\n", err);
		return 1;
	}
	rep = json_loads(reply, 0, NULL);
	free(reply);
	if (!rep) {
		fprintf(stderr, "vigilctl: vigild sent a reply that is not JSON\n");
		return 1;
	}
	/* Text from vigild holds what people typed: for a terminal, every string is escaped here, once,
	 * so no verb can print one raw. --json output is JSON, escaped by jansson. */
	if (!cli->json && !cli->data)
		terminal_safe(rep);
	if (!json_is_true(json_object_get(rep, "ok"))) {
		const char *why = json_string_value(json_object_get(rep, "error"));
		fprintf(stderr, "vigilctl: %s: %s\n", verb, why ? why : "refused");
		json_decref(rep);
		return 1;
	}
	*result = json_incref(json_object_get(rep, "result"));
	json_decref(rep);
	return 0;
}

int vigilctl_call(const struct cli *cli, const char *verb, json_t *args, json_t **result)
{
	return vigilctl_call_fds(cli, verb, args, NULL, 0, result);
}

int vigilctl_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

	if (!s)
		return 1;
	puts(s);
	free(s);
	return 0;
}

/* "now", "+8h", "+30m", Unix seconds, or "YYYY-MM-DDTHH:MM[:SS]" in UTC. -1 when unreadable. */
long long vigilctl_parse_time(const char *s)
{
	struct tm tm = { 0 };
	char *end;

	if (strcmp(s, "now") == 0)
		return (long long)time(NULL);
	if (s[0] == '+') {
		long long n = strtoll(s + 1, &end, 10);
		long long unit = *end == 'h' ? 3600 : *end == 'm' ? 60 : *end == 'd' ? 86400 : 0;
		/* Bounded before multiplying: vigild judges the time, but it must be a time. */
		return unit && end[1] == '\0' && n >= 0 && n <= 100LL * 366 * 86400 / unit ? (long long)time(NULL) + n * unit
											      : -1;
	}
	long long n = strtoll(s, &end, 10);
	if (*end == '\0' && end != s)
		return n;
	end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (end && *end == ':')
		end = strptime(end, ":%S", &tm);
	if (!end || (*end && strcmp(end, "Z") != 0))
		return -1;
	return (long long)timegm(&tm);
}

void vigilctl_fmt_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	/* A time a year can no longer hold (the database was edited) is said so, not a crash. */
	if (!gmtime_r(&tt, &tm) || tm.tm_year > 9999 - 1900 || tm.tm_year < -1900)
		snprintf(buf, len, "(time %lld)", t);
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm);
}

int vigilctl_opts(int argc, char **argv, struct cli *cli, const struct option *extra, size_t n_extra,
		  int (*on_opt)(int opt, const char *arg, void *ctx), void *ctx)
{
	struct option opts[24] = { { "socket", required_argument, NULL, 'S' }, { "json", no_argument, NULL, 'J' },
				   { "timeout", required_argument, NULL, 'T' } };
	const char *env = getenv("VIGIL_TIMEOUT");
	int c;

	memcpy(opts + 3, extra, n_extra * sizeof(*extra));
	memset(opts + 3 + n_extra, 0, sizeof(*opts));
	/* main() took the options that may stand anywhere out of argv already (vigilctl.c). */
	cli->socket = vigilctl_global.socket ? vigilctl_global.socket : default_socket();
	cli->json = vigilctl_global.json;
	cli->data = false;
	cli->timeout_ms = vigilctl_global.timeout_ms;
	if (!cli->timeout_ms && env && *env && !(cli->timeout_ms = vigilctl_parse_timeout(env))) {
		fprintf(stderr, "vigilctl: VIGIL_TIMEOUT='%.32s' is not a number of seconds from 1 to 3600\n", env);
		return -1;
	}
	if (!cli->timeout_ms)
		cli->timeout_ms = MGMT_CTL_CALL_TIMEOUT_MS;
	optind = 1;
	opterr = 0;
	/* ":" first: a missing value comes back as ':', not '?', so the line can say which it was. */
	while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		if (c == 'S')
			cli->socket = optarg;
		else if (c == 'J')
			cli->json = true;
		else if (c == 'T') {
			if (!(cli->timeout_ms = vigilctl_parse_timeout(optarg)))
				return vigilctl_usage("--timeout '%.32s' is not a number of seconds from 1 to 3600",
						      optarg), -1;
		} else if (c == ':') {
			return vigilctl_usage("%s needs a value", argv[optind - 1]), -1;
		} else if (c == '?' || !on_opt || (c = on_opt(c, optarg, ctx)) < 0) {
			/* -2: the option's handler already said why, in one line. */
			if (c != -2)
				vigilctl_usage("unknown option '%s'", argv[optind - 1]);
			return -1;
		}
	}
	return optind;
}

const char *vigilctl_models(const char *opt)
{
	const char *env = getenv("VIGIL_MODELS");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	/* The old spelling would otherwise be ignored without a word. */
	if (getenv("VIGIL_MODEL_DIR"))
		fprintf(stderr, "vigilctl: warning: VIGIL_MODEL_DIR is ignored; the variable is VIGIL_MODELS\n");
	return "fetched/face-api-1.7.15/model";
}

int vigilctl_usage(const char *fmt, ...)
{
	char what[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "vigilctl: %s: %s (vigilctl %s --help)\n", vigilctl_verb, what, vigilctl_verb);
	return 2;
}

int vigilctl_out_open(const char *path)
{
	/* O_EXCL: an earlier export or evidence file is never silently replaced; O_NONBLOCK with
	 * O_EXCL can only ever create a regular file, so a FIFO or device named --out is refused at
	 * once rather than opened (and waited on) or written into. */
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	if (errno == EEXIST) {
		struct stat st;
		bool regular = stat(path, &st) == 0 && S_ISREG(st.st_mode);
		fprintf(stderr, "vigilctl: --out %s: %s\n", path,
			regular ? "the file exists; vigilctl never overwrites one (remove it, or name another)"
				: "not a regular file (a FIFO, device or folder is refused)");
	} else {
		fprintf(stderr, "vigilctl: --out %s: %s\n", path, strerror(errno));
	}
	return -1;
}

/* ARGV[FIRST], if present, is WHAT's id (a positive integer) and goes into ARGS as "id"; more is an error. */
int vigilctl_positional_id(int argc, char **argv, int first, const char *what, const char *sub, json_t *args)
{
	char *end;

	if (first == argc)
		return 0;
	if (first + 1 < argc)
		return vigilctl_usage("%s: too many arguments", sub), -1;
	long long id = strtoll(argv[first], &end, 10);
	if (*end || id <= 0)
		return vigilctl_usage("'%s' is not a%s %s id", argv[first], what[0] == 'a' ? "n" : "", what), -1;
	json_object_set_new(args, "id", json_integer(id));
	return 0;
}
