/*
 * vigilctl camera add|list|remove|probe: the cameras vigild watches (mgmt_camera.c), over the
 * control socket. A camera's URL may carry its credentials; vigild seals them and every reply,
 * this program's output included, shows the URL without them. `--url -` reads the URL from
 * standard input, so the password stays out of the process list and the shell's history.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigilctl_int.h"

struct camera_opts {
	json_t *args;
};

static int parse_count(const char *s, long long lo, long long hi, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end || errno || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

/*
 * The first line of standard input into BUF. A terminal is a person typing, and is waited for; a
 * pipe, FIFO or anything else is given --timeout (else 5 s) for its line, so that a writer that
 * never writes cannot hang a script. 0, or -1 after one line on stderr.
 */
static int read_url_stdin(char *buf, size_t len)
{
	int wait_ms = isatty(STDIN_FILENO) ? -1 : vigilctl_global.timeout_ms ? (int)vigilctl_global.timeout_ms : 5000;
	size_t have = 0;

	for (;;) {
		struct pollfd p = { STDIN_FILENO, POLLIN, 0 };
		int n = poll(&p, 1, wait_ms); /* the whole wait, not per read: a URL is one short write */
		ssize_t got = n > 0 ? read(STDIN_FILENO, buf + have, len - 1 - have) : -1;

		if (n == 0) {
			fprintf(stderr, "vigilctl: camera: --url -: no URL on standard input within %d s\n", wait_ms / 1000);
			return -1;
		}
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0) {
			fprintf(stderr, "vigilctl: camera: --url -: standard input: %s\n", strerror(errno));
			return -1;
		}
		have += (size_t)got;
		buf[have] = '\0';
		if (got == 0 || memchr(buf, '\n', have))
			break;
		if (have == len - 1) {
			fprintf(stderr, "vigilctl: camera: --url -: a URL is at most %zu bytes\n", len - 2);
			return -1;
		}
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0])
		fprintf(stderr, "vigilctl: camera: --url -: no URL on standard input\n");
	return buf[0] ? 0 : -1;
}

static int camera_opt(int opt, const char *arg, void *vctx)
{
	struct camera_opts *c = vctx;
	long long v;

	switch (opt) {
	case 1:
		if (strcmp(arg, "-") == 0) {
			char url[1200];

			if (read_url_stdin(url, sizeof(url)) < 0)
				return -2;
			json_object_set_new(c->args, "url", json_string(url));
			memset(url, 0, sizeof(url));
		} else {
			json_object_set_new(c->args, "url", json_string(arg));
			/* Blank the credentials out of our argv, which other users can read in
			 * /proc/PID/cmdline (a narrow window; `--url -` has none). */
			memset((char *)arg, 'x', strlen(arg));
		}
		return 0;
	case 2:
		json_object_set_new(c->args, "location", json_string(arg));
		return 0;
	case 3:
		if (parse_count(arg, 1, 60, &v) < 0) {
			vigilctl_usage("--fps must be a whole number from 1 to 60");
			return -2;
		}
		json_object_set_new(c->args, "fps", json_integer(v));
		return 0;
	case 4:
		if (parse_count(arg, 1, 10, &v) < 0) {
			vigilctl_usage("--seconds must be a whole number from 1 to 10");
			return -2;
		}
		json_object_set_new(c->args, "seconds", json_integer(v));
		return 0;
	}
	return -1;
}

static void print_camera(json_t *c)
{
	const char *loc = json_string_value(json_object_get(c, "location"));

	printf("%-16s %2lld fps  %s%s%s%s\n", json_string_value(json_object_get(c, "id")),
	       (long long)json_integer_value(json_object_get(c, "fps")), json_string_value(json_object_get(c, "url")),
	       json_is_true(json_object_get(c, "credentials")) ? "  (credentials sealed)" : "", loc && *loc ? "  at " : "",
	       loc ? loc : "");
}

int vigilctl_camera(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 1 },
		{ "location", required_argument, NULL, 2 },
		{ "fps", required_argument, NULL, 3 },
		{ "seconds", required_argument, NULL, 4 },
	};
	struct camera_opts c = { json_object() };
	const char *sub, *verb;
	struct cli cli;
	json_t *r = NULL;
	int first, rc = 2;

	if (argc < 2) {
		vigilctl_usage("add|list|remove|probe");
		goto out;
	}
	sub = argv[1];
	first = vigilctl_opts(argc - 1, argv + 1, &cli, opts, sizeof(opts) / sizeof(opts[0]), camera_opt, &c);
	if (first < 0)
		goto out;
	first += 1; /* vigilctl_opts saw argv + 1 */
	bool wants_id = strcmp(sub, "list") != 0;
	if (argc - first != (wants_id ? 1 : 0)) {
		vigilctl_usage("%s: %s", sub, wants_id ? "name one camera id" : "takes no arguments");
		goto out;
	}
	if (wants_id)
		json_object_set_new(c.args, "id", json_string(argv[first]));
	if (strcmp(sub, "add") == 0) {
		if (!json_object_get(c.args, "url")) {
			fprintf(stderr, "vigilctl: camera add: --url rtsp://... is required\n");
			goto out;
		}
		verb = "camera.add";
	} else if (strcmp(sub, "list") == 0) {
		verb = "camera.list";
	} else if (strcmp(sub, "remove") == 0) {
		verb = "camera.remove";
	} else if (strcmp(sub, "probe") == 0) {
		verb = "camera.probe";
	} else {
		vigilctl_usage("unknown sub-command '%s'", sub);
		goto out;
	}
	rc = vigilctl_call(&cli, verb, json_incref(c.args), &r);
	if (rc)
		goto out;
	if (cli.json) {
		vigilctl_print_json(r);
	} else if (strcmp(sub, "list") == 0) {
		size_t i;
		json_t *v;

		json_array_foreach(json_object_get(r, "cameras"), i, v)
			print_camera(v);
	} else if (strcmp(sub, "add") == 0) {
		printf("camera added: ");
		print_camera(r);
	} else if (strcmp(sub, "remove") == 0) {
		printf("camera %s removed\n", json_string_value(json_object_get(r, "id")));
	} else {
		long long w = json_integer_value(json_object_get(r, "width"));
		long long h = json_integer_value(json_object_get(r, "height"));

		printf("%s: %s, %lldx%lld, %.1f fps; %lld RTP packets, %lld lost (%.2f%%), %lld reordered, "
		       "%lld duplicates, %lld pictures decoded in %.1f s\n",
		       json_string_value(json_object_get(r, "id")), json_string_value(json_object_get(r, "codec")), w, h,
		       json_real_value(json_object_get(r, "fps")),
		       (long long)json_integer_value(json_object_get(r, "packets")),
		       (long long)json_integer_value(json_object_get(r, "lost")),
		       json_real_value(json_object_get(r, "loss_percent")),
		       (long long)json_integer_value(json_object_get(r, "reordered")),
		       (long long)json_integer_value(json_object_get(r, "duplicates")),
		       (long long)json_integer_value(json_object_get(r, "frames")),
		       json_real_value(json_object_get(r, "seconds")));
		if (!w)
			fprintf(stderr, "vigilctl: camera probe: no picture decoded: resolution unknown\n");
	}
	json_decref(r);
out:
	json_decref(c.args);
	return rc;
}
