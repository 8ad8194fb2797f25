/*
 * common/vg_url: camera URLs split into a public URL and percent-decoded credentials. Attacked
 * with passwords holding '@', ':', '/', '%', a space and unicode, credentials in the query string
 * and a userinfo-looking path: each is either split exactly or refused with one line that holds
 * no 4-byte piece of the password, and no public URL ever holds one either.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vg_test.h"
#include "vg_url.h"

/* Whether TEXT holds any 4-byte run of SECRET (the whole of it when shorter). */
static int leaks(const char *text, const char *secret)
{
	size_t n = strlen(secret), w = n < 4 ? n : 4;

	for (size_t i = 0; n && i + w <= n; i++)
		if (memmem(text, strlen(text), secret + i, w))
			return 1;
	return 0;
}

/* URL must split into PUBLIC with exactly USER and PASSWORD (decoded). */
static void split_ok(const char *url, const char *public, const char *user, const char *password)
{
	struct vg_url u;
	char err[256] = "";
	int rc = vg_url_split(url, "rtsp", "554", &u, err, sizeof(err));

	if (rc != 0)
		fprintf(stderr, "%s: %s\n", url, err);
	CHECK_EQ_INT(rc, 0);
	if (rc == 0 && (strcmp(u.url, public) || strcmp(u.user, user) || strcmp(u.password, password)))
		fprintf(stderr, "%s -> url [%s] user [%s] password [%s]\n", url, u.url, u.user, u.password);
	CHECK(strcmp(u.url, public) == 0);
	CHECK(strcmp(u.user, user) == 0 && strcmp(u.password, password) == 0);
	CHECK(strlen(password) < 4 || (!leaks(u.url, password) && !leaks(u.target, password) && !leaks(u.host, password)));
	vg_url_scrub(&u);
}

/* URL must be refused with RC and a one-line reason holding WHY and no piece of SECRET. */
static void split_refused(const char *url, int want, const char *why, const char *secret)
{
	struct vg_url u;
	char err[256] = "";
	int rc = vg_url_split(url, "rtsp", "554", &u, err, sizeof(err));

	if (rc != want || !strstr(err, why))
		fprintf(stderr, "%s -> %d: %s\n", url, rc, err);
	CHECK_EQ_INT(rc, want);
	CHECK(strstr(err, why) != NULL && !strchr(err, '\n'));
	CHECK(!leaks(err, secret));
	CHECK(u.user[0] == '\0' && u.password[0] == '\0' && u.url[0] == '\0'); /* wiped */
}

int main(void)
{
	struct vg_url u;
	char err[256];

	/* The plain cases, and what libcurl writes back (a path is at least "/"). */
	split_ok("rtsp://officer:Hunter2-pw@10.0.0.4:554/live", "rtsp://10.0.0.4:554/live", "officer", "Hunter2-pw");
	split_ok("rtsp://h", "rtsp://h/", "", "");
	split_ok("rtsp://user@h/x", "rtsp://h/x", "user", "");
	split_ok("RTSP://u:p@Cam.Example/a?b=1#frag", "rtsp://Cam.Example/a?b=1", "u", "p");
	/* Percent-decoding: '@', '/', '%', ':' and a space encoded; ':' after the first may stay raw. */
	split_ok("rtsp://admin:p%40ss%2Fw%25rd%20x@cam/s", "rtsp://cam/s", "admin", "p@ss/w%rd x");
	split_ok("rtsp://admin:a:b:c@cam/s", "rtsp://cam/s", "admin", "a:b:c");
	split_ok("rtsp://ad%3Amin:x@cam/s", "rtsp://cam/s", "ad:min", "x");
	split_ok("rtsp://admin:%4040%2F2F@cam/s", "rtsp://cam/s", "admin", "@40/2F"); /* decoded once */
	split_ok("rtsp://admin:raw space@cam/s", "rtsp://cam/s", "admin", "raw space");
	split_ok("rtsp://admin:%E2%82%ACuro%C3%A9@cam/s", "rtsp://cam/s", "admin", "\xe2\x82\xacuro\xc3\xa9");
	split_ok("rtsp://admin:\xe2\x82\xacuro@cam/s", "rtsp://cam/s", "admin", "\xe2\x82\xacuro");
	/* Host, port and request target for the client; IPv6 without its brackets. */
	CHECK_EQ_INT(vg_url_split("rtsp://u:p@[::1]:8554/a/b?c=d", "rtsp", "554", &u, err, sizeof(err)), 0);
	CHECK(strcmp(u.host, "::1") == 0 && strcmp(u.port, "8554") == 0 && strcmp(u.target, "/a/b?c=d") == 0);
	CHECK(strcmp(u.url, "rtsp://[::1]:8554/a/b?c=d") == 0);
	CHECK_EQ_INT(vg_url_split("rtsp://h/", "rtsp", "554", &u, err, sizeof(err)), 0);
	CHECK(strcmp(u.port, "554") == 0 && strcmp(u.target, "/") == 0);

	/* A raw '@' in the password: RFC 3986 has no such userinfo. The old splitter cut at the
	 * first '@' and kept "ss@cam" as the host, a piece of the password in every record. */
	split_refused("rtsp://admin:p@ss@cam/s", -EINVAL, "%40", "p@ss");
	/* A raw '/', '?' or '#' in the password ends the host early: the rest would be a path. */
	split_refused("rtsp://admin:12/x@cam/s", -EINVAL, "after its host", "12/x");
	split_refused("rtsp://admin:ab?cd@cam/s", -EINVAL, "after its host", "ab?cd");
	split_refused("rtsp://admin:ab#cd@cam/s", -EINVAL, "after its host", "ab#cd");
	/* A userinfo-looking path segment is never taken for credentials, nor kept. */
	split_refused("rtsp://cam/live/officer:Hunter2@x", -EINVAL, "after its host", "Hunter2");
	split_refused("rtsp://cam/live?x=officer:Hunter2@y", -EINVAL, "after its host", "Hunter2");
	/* Credentials in the query string, however the name is cased or encoded. */
	split_refused("rtsp://cam/live?channel=1&password=Hunter2", -EINVAL, "'password='", "Hunter2");
	split_refused("rtsp://cam/live?USER=admin&PWD=Hunter2", -EINVAL, "credential", "Hunter2");
	split_refused("rtsp://cam/live?pass%77ord=Hunter2", -EINVAL, "'password='", "Hunter2");
	split_refused("rtsp://cam/live?a=1;token=Hunter2", -EINVAL, "'token='", "Hunter2");
	split_refused("rtsp://cam/live?Auth=Hunter2", -EINVAL, "'auth='", "Hunter2");
	split_refused("rtsp://cam/live?key=Hunter2", -EINVAL, "'key='", "Hunter2");
	/* Control characters cannot go into an RTSP header nor a --rtsp-file line. */
	split_refused("rtsp://admin:Hunt%0Aer2@cam/s", -EINVAL, "control character", "Hunt%0Aer2");
	split_refused("rtsp://admin:Hunt%09er2@cam/s", -EINVAL, "control character", "Hunt%09er2");
	split_refused("rtsp://admin:Hunt%00er2@cam/s", -EINVAL, "control character", "Hunt%00er2");
	split_refused("rtsp://admin:Hunt\ter2@cam/s", -EINVAL, "must be rtsp://", "Hunt\ter2");
	/* Not a camera URL, no host, bad port, a space left in the path. */
	split_refused("http://u:Hunter2@h/", -EINVAL, "must be rtsp://", "Hunter2");
	split_refused("rtsp://u:Hunter2@/x", -EINVAL, "must be rtsp://", "Hunter2");
	split_refused("rtsp://u:Hunter2@:554/x", -EINVAL, "must be rtsp://", "Hunter2");
	split_refused("rtsp://u:Hunter2@h:99999/x", -EINVAL, "port", "Hunter2");
	split_refused("rtsp://u:Hunter2@h/a b", -EINVAL, "%20", "Hunter2");
	split_refused("rtsp:/h/x", -EINVAL, "must be rtsp://", "");
	/* Too long: the password, the URL. */
	char url[2048], pw[200];
	memset(pw, 'q', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	snprintf(url, sizeof(url), "rtsp://u:%s@h/x", pw);
	split_refused(url, -E2BIG, "longer than 127", pw);
	snprintf(url, sizeof(url), "rtsp://h/%01500d", 0);
	split_refused(url, -E2BIG, "longer than 1023", "");
	return vg_test_exit();
}
