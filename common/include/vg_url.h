/**
 * @file vg_url.h
 * The one parser of URLs that may carry credentials (a camera's rtsp://user:password@host/path):
 * RFC 3986 through libcurl's URL API (curl_url), so that what is sealed, what is shown and what
 * the RTSP client sends all come from one reading of the URL. vg_url_split() separates it, at the
 * first parse, into a public URL that holds no credential in any form and the user name and
 * password, percent-decoded. Everything that is stored in clear, shown, logged or audited is the
 * public URL; the credentials go only to the sealing (mgmt) or to the wire (dp_rtsp).
 *
 * What is refused, with a one-line reason that never quotes the URL (it may hold a password):
 * - a scheme other than the caller's, no host, a bad port, a URL curl cannot parse;
 * - an '@' anywhere after the host: a password with a raw '/', '?', '#' or second '@' ends the
 *   host early and would leave the rest of the password in the public URL's path or query;
 *   such characters must be percent-encoded (%2F, %3F, %23, %40);
 * - credentials in the query string: a parameter named user, username, password, pass, pwd,
 *   passwd, token, auth or key (case-insensitive, percent-decoded); they are refused rather
 *   than silently dropped, since the camera would then be added without them;
 * - control characters in the user name or password (raw or percent-encoded): they cannot be
 *   sent in an RTSP header nor kept on one line of vigild run's --rtsp-file;
 * - a space left in the public URL (a request line cannot carry it): write it %20.
 * A fragment (#...) is never sent to a server and is dropped from the public URL.
 *
 * Any thread; no state. libcurl keeps its own copies while parsing and frees them without wiping
 * them; the copies vg_url hands out are the caller's to wipe with vg_url_scrub().
 */
#ifndef VG_URL_H
#define VG_URL_H

#include <stddef.h>

#define VG_URL_MAX 1024     /* bytes of a URL, with its NUL: mgmt's and dp_rtsp's url fields */
#define VG_URL_CRED_MAX 128 /* bytes of a user name or password, with its NUL */

struct vg_url {
	char url[VG_URL_MAX];                /* public: no userinfo, no credential parameter, no fragment */
	char host[256];                      /* for getaddrinfo(): an IPv6 literal without its brackets */
	char port[8];                        /* the URL's, or the caller's default */
	char target[VG_URL_MAX];             /* path and ?query: what a request line names */
	char user[VG_URL_CRED_MAX];          /* percent-decoded; "" when the URL has none */
	char password[VG_URL_CRED_MAX];      /* percent-decoded; "" when the URL has none */
};

/**
 * Split URL, which must be SCHEME://[user[:password]@]host[:port][/path][?query], into OUT.
 * DEFAULT_PORT fills OUT->port when the URL names none. Returns 0, or -EINVAL (refused, see
 * above), -E2BIG (the URL, the user name or the password is too long), -ENOMEM, each with a
 * one-line reason in ERR that never holds any part of the URL. On error OUT is wiped.
 */
int vg_url_split(const char *url, const char *scheme, const char *default_port, struct vg_url *out /* OUT */,
		 char *err, size_t errlen);

/** Wipe U's credentials (and the rest of it) once they are sealed or sent. */
void vg_url_scrub(struct vg_url *u);

#endif
