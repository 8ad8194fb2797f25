/*
 * URLs with credentials (vg_url.h): libcurl's URL API does the RFC 3986 reading and the
 * percent-decoding; this file only adds the refusals that keep a password out of the public URL
 * and turns curl's parts into fixed-size fields. No reason below quotes the URL or a part of it.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vg_base.h"
#include "vg_pool.h"
#include "vg_url.h"

/* Query parameters that carry credentials on some cameras (e.g. ?user=admin&password=...). */
static const char *const cred_params[] = { "user", "username", "password", "pass", "pwd",
					   "passwd", "token", "auth", "key" };

/* curl's copy of a part, wiped before it is freed: it may be a password. */
static void part_free(char **s)
{
	if (*s) {
		vg_scrub(*s, strlen(*s));
		curl_free(*s);
		*s = NULL;
	}
}

/*
 * Copy curl's PART into DST (CAP bytes). A part the URL lacks is "". -E2BIG when it does not fit;
 * -EINVAL when curl refuses it (for a URL-decoded one: it decodes to a control character).
 */
static int part_copy(CURLU *h, CURLUPart part, unsigned flags, char *dst, size_t cap)
{
	char *s = NULL;
	CURLUcode uc = curl_url_get(h, part, &s, flags);
	int rc = 0;

	dst[0] = '\0';
	if (uc == CURLUE_OUT_OF_MEMORY)
		return -ENOMEM;
	if (uc == CURLUE_NO_USER || uc == CURLUE_NO_PASSWORD || uc == CURLUE_NO_PORT || uc == CURLUE_NO_QUERY)
		return 0;
	if (uc != CURLUE_OK)
		return -EINVAL;
	if (strlen(s) >= cap)
		rc = -E2BIG;
	else
		memcpy(dst, s, strlen(s) + 1);
	part_free(&s);
	return rc;
}

/*
 * Whether the query string QUERY has a credential parameter; its canonical name in *WHICH.
 * Cost: one pass over at most VG_URL_MAX bytes, one decode per parameter name.
 */
static int query_has_credential(const char *query, const char **which)
{
	const char *p = query;

	while (*p) {
		size_t seg = strcspn(p, "&;");
		char *name = curl_easy_unescape(NULL, p, (int)strcspn(p, "=&;"), NULL);

		if (!name)
			return -ENOMEM;
		for (size_t i = 0; i < VG_ARRAY_SIZE(cred_params); i++)
			if (strcasecmp(name, cred_params[i]) == 0)
				*which = cred_params[i];
		curl_free(name);
		if (*which)
			return 1;
		p += seg;
		if (*p)
			p++;
	}
	return 0;
}

/*
 * The refusals that must come before curl reads the URL: curl would accept a password with a
 * raw '/' ("rtsp://u:12/x@h/") as host "u", port 12 and path "/x@h/", putting the password in the
 * public URL. An '@' is never needed after the host, so any there is refused.
 */
static int precheck(const char *url, const char *scheme, char *err, size_t errlen)
{
	size_t sl = strlen(scheme), len = strlen(url);
	const char *auth, *end, *at;

	if (len >= VG_URL_MAX)
		return vg_errf(err, errlen, -E2BIG, "the URL is longer than %d bytes", VG_URL_MAX - 1);
	if (strncasecmp(url, scheme, sl) != 0 || strncmp(url + sl, "://", 3) != 0)
		return vg_errf(err, errlen, -EINVAL, "the URL must be %s://[user[:password]@]host[:port]/path", scheme);
	auth = url + sl + 3;
	end = auth + strcspn(auth, "/?#");
	if (strchr(end, '@'))
		return vg_errf(err, errlen, -EINVAL,
			       "the URL has an '@' after its host: a '/', '?', '#' or '@' in a user name or password"
			       " must be percent-encoded (%%2F, %%3F, %%23, %%40)");
	at = memchr(auth, '@', (size_t)(end - auth));
	if (at && memchr(at + 1, '@', (size_t)(end - at - 1)))
		return vg_errf(err, errlen, -EINVAL,
			       "the URL has two '@' before its host: an '@' in a user name or password must be written %%40");
	return 0;
}

/* Fill OUT from the parsed H; on return H holds only the public URL. */
static int split_parts(CURLU *h, const char *scheme, const char *default_port, struct vg_url *out, char *err,
		       size_t errlen)
{
	char query[VG_URL_MAX], *s = NULL;
	const char *which = NULL;
	int rc;

	rc = part_copy(h, CURLUPART_USER, CURLU_URLDECODE, out->user, sizeof(out->user));
	if (rc == 0)
		rc = part_copy(h, CURLUPART_PASSWORD, CURLU_URLDECODE, out->password, sizeof(out->password));
	if (rc == -E2BIG)
		return vg_errf(err, errlen, rc, "the URL's user name or password is longer than %d bytes",
			       VG_URL_CRED_MAX - 1);
	if (rc == -EINVAL)
		return vg_errf(err, errlen, rc, "the URL's user name or password holds a control character");
	if (rc < 0)
		return vg_errf(err, errlen, rc, "out of memory");
	if (part_copy(h, CURLUPART_SCHEME, 0, query, sizeof(query)) < 0 || strcasecmp(query, scheme) != 0)
		return vg_errf(err, errlen, -EINVAL, "the URL must be %s://[user[:password]@]host[:port]/path", scheme);
	rc = part_copy(h, CURLUPART_QUERY, 0, query, sizeof(query));
	if (rc < 0)
		return vg_errf(err, errlen, -EINVAL, "the URL's query string cannot be read");
	rc = query_has_credential(query, &which);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "out of memory");
	if (rc > 0)
		return vg_errf(err, errlen, -EINVAL,
			       "the URL's query string holds a credential ('%s='): give them as %s://user:password@host/...",
			       which, scheme);
	/* IPv6 literals come back bracketed, as the URL writes them; getaddrinfo() wants them bare. */
	if (part_copy(h, CURLUPART_HOST, 0, out->host, sizeof(out->host)) < 0 || !out->host[0])
		return vg_errf(err, errlen, -EINVAL, "the URL has no host or a host longer than 255 bytes");
	if (out->host[0] == '[') {
		size_t n = strlen(out->host);

		memmove(out->host, out->host + 1, n - 2);
		out->host[n - 2] = '\0';
	}
	if (part_copy(h, CURLUPART_PORT, 0, out->port, sizeof(out->port)) < 0)
		return vg_errf(err, errlen, -EINVAL, "the URL's port is not a number from 1 to 65535");
	if (!out->port[0])
		snprintf(out->port, sizeof(out->port), "%s", default_port);
	if (part_copy(h, CURLUPART_PATH, 0, out->target, sizeof(out->target)) < 0)
		return vg_errf(err, errlen, -EINVAL, "the URL's path cannot be read");
	if (query[0] && snprintf(out->target + strlen(out->target), sizeof(out->target) - strlen(out->target), "?%s",
				 query) >= (int)(sizeof(out->target) - strlen(out->target)))
		return vg_errf(err, errlen, -E2BIG, "the URL is longer than %d bytes", VG_URL_MAX - 1);

	/* What is left is the public URL: curl writes it again from the parts, without the others. */
	if (curl_url_set(h, CURLUPART_USER, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_PASSWORD, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_OPTIONS, NULL, 0) != CURLUE_OK ||
	    curl_url_set(h, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK || curl_url_get(h, CURLUPART_URL, &s, 0) != CURLUE_OK)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	rc = strlen(s) < sizeof(out->url) ? 0 : -E2BIG;
	if (rc == 0)
		memcpy(out->url, s, strlen(s) + 1);
	curl_free(s);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "the URL is longer than %d bytes", VG_URL_MAX - 1);
	if (strchr(out->url, ' '))
		return vg_errf(err, errlen, -EINVAL, "the URL's host, path or query has a space: write it %%20");
	return 0;
}

int vg_url_split(const char *url, const char *scheme, const char *default_port, struct vg_url *out, char *err,
		 size_t errlen)
{
	CURLU *h;
	CURLUcode uc;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = precheck(url, scheme, err, errlen);
	if (rc < 0)
		return rc;
	h = curl_url();
	if (!h)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	/* A raw space is allowed while parsing so that a password may hold one; one left in the
	 * public URL is refused in split_parts(). NON_SUPPORT_SCHEME: the scheme is checked here,
	 * whatever protocols this libcurl was built with. */
	uc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME | CURLU_ALLOW_SPACE);
	if (uc == CURLUE_OUT_OF_MEMORY)
		rc = vg_errf(err, errlen, -ENOMEM, "out of memory");
	else if (uc == CURLUE_BAD_PORT_NUMBER)
		rc = vg_errf(err, errlen, -EINVAL, "the URL's port is not a number from 1 to 65535");
	else if (uc != CURLUE_OK)
		rc = vg_errf(err, errlen, -EINVAL, "the URL must be %s://[user[:password]@]host[:port]/path (%s)", scheme,
			     curl_url_strerror(uc));
	else
		rc = split_parts(h, scheme, default_port, out, err, errlen);
	/* Drop curl's copies of the credentials before the handle goes. */
	curl_url_set(h, CURLUPART_USER, NULL, 0);
	curl_url_set(h, CURLUPART_PASSWORD, NULL, 0);
	curl_url_cleanup(h);
	if (rc < 0)
		vg_url_scrub(out);
	return rc;
}

void vg_url_scrub(struct vg_url *u)
{
	vg_scrub(u, sizeof(*u));
}
