/*
 * RTSP client (RFC 2326) on the kernel's TCP: OPTIONS, DESCRIBE, SETUP, PLAY, keep-alive with
 * GET_PARAMETER, TEARDOWN; Basic and Digest (RFC 2617, no qop) authentication. The control path
 * runs on the mgmt thread, never on an RX lcore: blocking sockets with a timeout per request.
 *
 * Credentials: kept only in this struct, zeroed at close, and never formatted into an error
 * reason or a log line (errors name host:port and the request, nothing else). URLs are read by
 * vg_url_split() (vg_url.h), the parser mgmt seals camera credentials with.
 */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libavutil/base64.h>
#include <libavutil/md5.h>

#include "dp.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_pool.h"
#include "vg_url.h"

struct dp_rtsp {
	int fd;
	char host[256];
	char port[8];
	char url[1024];   /* without credentials */
	char user[128];
	char password[128];
	char base[1024];  /* Content-Base, for relative control URLs */
	char session[128];
	char auth_scheme[8], realm[128], nonce[128];
	unsigned cseq;
	unsigned timeout_ms;
	unsigned session_timeout;
	uint64_t last_ms;
	struct dp_sdp sdp;
	char buf[DP_RTSP_MAX_HEADER + DP_RTSP_MAX_BODY];
	size_t buf_len;
};

unsigned dp_rtsp_backoff_ms(unsigned attempt)
{
	return attempt >= 7 ? 30000 : 250u << attempt > 30000 ? 30000 : 250u << attempt;
}

/* ---- response parsing ------------------------------------------------------------------------- */

static void copy_field(char *dst, size_t cap, const char *s, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, s, n);
	dst[n] = 0;
}

/* The value of KEY="v" or KEY=v in a WWW-Authenticate header S[0..n). */
static void auth_param(const char *s, size_t n, const char *key, char *dst, size_t cap)
{
	size_t kl = strlen(key);

	for (size_t i = 0; i + kl + 1 < n; i++) {
		if ((i == 0 || s[i - 1] == ' ' || s[i - 1] == ',') && !strncasecmp(s + i, key, kl) && s[i + kl] == '=') {
			size_t v = i + kl + 1, e;
			if (v < n && s[v] == '"') {
				v++;
				for (e = v; e < n && s[e] != '"'; e++)
					;
			} else {
				for (e = v; e < n && s[e] != ',' && s[e] != ' '; e++)
					;
			}
			copy_field(dst, cap, s + v, e - v);
			return;
		}
	}
}

/*
 * One header line of a response, KEY[0..kl) and its value VAL[0..vl), into R. -EBADMSG for a
 * CSeq, Content-Length or Session that is malformed or over its bound; unknown headers are skipped.
 */
static int header_line(struct dp_rtsp_response *r, const char *h, size_t kl, const char *val, size_t vl,
		       size_t *content_length, bool *have_cl)
{
#define IS(k) (kl == sizeof(k) - 1 && !strncasecmp(h, k, kl))
	if (IS("CSeq") || IS("Content-Length")) {
		unsigned long x = 0;
		if (vl == 0 || vl > 9)
			return -EBADMSG;
		for (size_t i = 0; i < vl; i++) {
			if (val[i] < '0' || val[i] > '9')
				return -EBADMSG;
			x = x * 10 + (unsigned long)(val[i] - '0');
		}
		if (IS("CSeq")) {
			r->cseq = (unsigned)x;
		} else {
			if (x > DP_RTSP_MAX_BODY)
				return -EBADMSG;
			*content_length = x;
			*have_cl = true;
		}
	} else if (IS("Session")) {
		size_t id = 0;
		while (id < vl && val[id] != ';')
			id++;
		if (id == 0 || id >= sizeof(r->session))
			return -EBADMSG;
		copy_field(r->session, sizeof(r->session), val, id);
		const char *t = id < vl ? val + id : NULL;
		if (t && vl - id > 9 && !strncasecmp(t, ";timeout=", 9)) {
			unsigned x = 0;
			for (size_t i = id + 9; i < vl && val[i] >= '0' && val[i] <= '9' && x < 100000; i++)
				x = x * 10 + (unsigned)(val[i] - '0');
			if (x >= 2)
				r->session_timeout = x;
		}
	} else if (IS("Content-Base")) {
		copy_field(r->content_base, sizeof(r->content_base), val, vl);
	} else if (IS("WWW-Authenticate")) {
		/* Prefer Digest when a server offers both. */
		bool digest = vl >= 7 && !strncasecmp(val, "Digest ", 7);
		bool basic = vl >= 6 && !strncasecmp(val, "Basic ", 6);
		if (digest || (basic && strcmp(r->auth_scheme, "Digest"))) {
			strcpy(r->auth_scheme, digest ? "Digest" : "Basic");
			auth_param(val, vl, "realm", r->realm, sizeof(r->realm));
			r->nonce[0] = 0;
			if (digest)
				auth_param(val, vl, "nonce", r->nonce, sizeof(r->nonce));
		}
	} else if (IS("Transport")) {
		for (size_t i = 0; i + 12 < vl; i++)
			if (!strncasecmp(val + i, "server_port=", 12)) {
				unsigned x = 0;
				for (size_t j = i + 12; j < vl && val[j] >= '0' && val[j] <= '9' && x <= 65535; j++)
					x = x * 10 + (unsigned)(val[j] - '0');
				r->server_port = x <= 65535 ? (uint16_t)x : 0;
				break;
			}
	}
#undef IS
	return 0;
}

int dp_rtsp_response_parse(const char *buf, size_t len, struct dp_rtsp_response *out)
{
	struct dp_rtsp_response r = { .session_timeout = 60 };
	size_t hdr_end = 0, content_length = 0;
	bool have_cl = false;

	if (len >= 9 && memcmp(buf, "RTSP/1.0 ", 9) != 0)
		return -EBADMSG;
	if (len < 9)
		return memcmp(buf, "RTSP/1.0 ", len) ? -EBADMSG : 0;
	for (size_t i = 0; i + 3 < len && i < DP_RTSP_MAX_HEADER; i++)
		if (buf[i] == '\r' && buf[i + 1] == '\n' && buf[i + 2] == '\r' && buf[i + 3] == '\n') {
			hdr_end = i + 4;
			break;
		}
	if (!hdr_end)
		return len >= DP_RTSP_MAX_HEADER ? -EBADMSG : 0;
	/* Status line. */
	if (hdr_end < 14 || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
	    buf[11] > '9' || (buf[12] != ' ' && buf[12] != '\r'))
		return -EBADMSG;
	r.status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	size_t pos = 0;
	while (pos < hdr_end && buf[pos] != '\n')
		pos++;
	pos++;
	while (pos + 2 <= hdr_end) {
		size_t e = pos;
		while (e < hdr_end && buf[e] != '\r')
			e++;
		const char *h = buf + pos;
		size_t n = e - pos;
		pos = e + 2;
		if (n == 0)
			break;
		const char *colon = memchr(h, ':', n);
		if (!colon)
			return -EBADMSG;
		size_t kl = (size_t)(colon - h), v = kl + 1;
		while (v < n && h[v] == ' ')
			v++;
		int rc = header_line(&r, h, kl, h + v, n - v, &content_length, &have_cl);
		if (rc < 0)
			return rc;
	}
	if (have_cl && content_length > 0) {
		if (len - hdr_end < content_length)
			return 0;
		r.body = buf + hdr_end;
		r.body_len = content_length;
	}
	*out = r;
	return (int)(hdr_end + (have_cl ? content_length : 0));
}

/* ---- the client --------------------------------------------------------------------------------- */

/*
 * Read URL with the one parser of camera URLs (vg_url.h), so that the client sends exactly the
 * percent-decoded credentials that mgmt sealed, and an '@' in a path is never taken for userinfo.
 */
static int parse_url(struct dp_rtsp *r, const char *url, char *err, size_t errlen)
{
	struct vg_url u;
	int rc = vg_url_split(url, "rtsp", "554", &u, err, errlen);

	if (rc < 0)
		return rc;
	memcpy(r->user, u.user, sizeof(r->user));
	memcpy(r->password, u.password, sizeof(r->password));
	_Static_assert(sizeof(r->host) == sizeof(u.host) && sizeof(r->port) == sizeof(u.port), "vg_url sizes");
	memcpy(r->host, u.host, sizeof(r->host));
	memcpy(r->port, u.port, sizeof(r->port));
	/* The URL as sent on the wire: without the credentials, with the port spelt out. */
	if (snprintf(r->url, sizeof(r->url), strchr(r->host, ':') ? "rtsp://[%s]:%s%s" : "rtsp://%s:%s%s", r->host,
		     r->port, u.target) >= (int)sizeof(r->url))
		rc = vg_errf(err, errlen, -EINVAL, "URL too long");
	vg_url_scrub(&u);
	return rc;
}

static int connect_to(struct dp_rtsp *r, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai, *a;
	struct timeval tv = { .tv_sec = r->timeout_ms / 1000, .tv_usec = (r->timeout_ms % 1000) * 1000 };
	int rc = getaddrinfo(r->host, r->port, &hints, &ai), last = -ECONNREFUSED;

	if (rc != 0)
		return vg_errf(err, errlen, -EHOSTUNREACH, "%s: %s", r->host, gai_strerror(rc));
	for (a = ai; a; a = a->ai_next) {
		int fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* bounds connect() too */
		if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
			r->fd = fd;
			freeaddrinfo(ai);
			return 0;
		}
		last = errno == EINPROGRESS || errno == EAGAIN ? -ETIMEDOUT : -errno;
		close(fd);
	}
	freeaddrinfo(ai);
	return vg_errf(err, errlen, last, "%s:%s: %s", r->host, r->port, vg_strerror(last));
}

static void md5_hex(char out[33], const char *s)
{
	uint8_t d[16];

	av_md5_sum(d, (const uint8_t *)s, (int)strlen(s));
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* The Authorization header for METHOD URI, or "" before the server asked. */
static void auth_header(struct dp_rtsp *r, const char *method, const char *uri, char *out, size_t cap)
{
	char tmp[600], ha1[33], ha2[33], resp[33];

	out[0] = 0;
	if (!strcmp(r->auth_scheme, "Basic")) {
		char b64[AV_BASE64_SIZE(sizeof(tmp))];
		snprintf(tmp, sizeof(tmp), "%s:%s", r->user, r->password);
		av_base64_encode(b64, sizeof(b64), (const uint8_t *)tmp, (int)strlen(tmp));
		snprintf(out, cap, "Authorization: Basic %s\r\n", b64);
		vg_scrub(b64, sizeof(b64));
	} else if (!strcmp(r->auth_scheme, "Digest")) {
		snprintf(tmp, sizeof(tmp), "%s:%s:%s", r->user, r->realm, r->password);
		md5_hex(ha1, tmp);
		snprintf(tmp, sizeof(tmp), "%s:%s", method, uri);
		md5_hex(ha2, tmp);
		snprintf(tmp, sizeof(tmp), "%s:%s:%s", ha1, r->nonce, ha2);
		md5_hex(resp, tmp);
		snprintf(out, cap,
			 "Authorization: Digest username=\"%s\", realm=\"%s\", nonce=\"%s\", uri=\"%s\", response=\"%s\"\r\n",
			 r->user, r->realm, r->nonce, uri, resp);
		vg_scrub(ha1, sizeof(ha1));
	}
	vg_scrub(tmp, sizeof(tmp));
}

/* Send one request and read its response into r->buf. EXTRA: more header lines, each ending CRLF. */
static int request(struct dp_rtsp *r, const char *method, const char *uri, const char *extra,
		   struct dp_rtsp_response *resp, char *err, size_t errlen)
{
	char req[4096], auth[1024];
	int n;

	for (int attempt = 0; attempt < 2; attempt++) {
		auth_header(r, method, uri, auth, sizeof(auth));
		n = snprintf(req, sizeof(req), "%s %s RTSP/1.0\r\nCSeq: %u\r\nUser-Agent: vigil\r\n%s%s%s%s%s\r\n", method,
			     uri, ++r->cseq, auth, r->session[0] ? "Session: " : "", r->session, r->session[0] ? "\r\n" : "",
			     extra ? extra : "");
		vg_scrub(auth, sizeof(auth));
		if (n >= (int)sizeof(req)) {
			vg_scrub(req, sizeof(req));
			return vg_errf(err, errlen, -EINVAL, "%s: request too long", method);
		}
		ssize_t w = send(r->fd, req, (size_t)n, MSG_NOSIGNAL);
		vg_scrub(req, sizeof(req));
		if (w != n)
			return vg_errf(err, errlen, -ECONNRESET, "%s:%s: %s: connection lost", r->host, r->port, method);
		r->buf_len = 0;
		for (;;) {
			int rc = dp_rtsp_response_parse(r->buf, r->buf_len, resp);
			if (rc < 0)
				return vg_errf(err, errlen, -EBADMSG, "%s:%s: %s: the answer is not RTSP", r->host, r->port, method);
			if (rc > 0)
				break;
			if (r->buf_len == sizeof(r->buf))
				return vg_errf(err, errlen, -EBADMSG, "%s:%s: %s: answer too long", r->host, r->port, method);
			ssize_t got = recv(r->fd, r->buf + r->buf_len, sizeof(r->buf) - r->buf_len, 0);
			if (got == 0)
				return vg_errf(err, errlen, -ECONNRESET, "%s:%s: %s: connection closed", r->host, r->port, method);
			if (got < 0)
				return vg_errf(err, errlen, errno == EAGAIN ? -ETIMEDOUT : -errno, "%s:%s: %s: %s", r->host,
					       r->port, method, errno == EAGAIN ? "no answer in time" : vg_strerror(-errno));
			r->buf_len += (size_t)got;
		}
		if (resp->cseq != r->cseq)
			return vg_errf(err, errlen, -EBADMSG, "%s:%s: %s: answer for CSeq %u, sent %u", r->host, r->port,
				       method, resp->cseq, r->cseq);
		if (resp->status == 401 && attempt == 0 && resp->auth_scheme[0] && r->user[0] && !r->auth_scheme[0]) {
			strcpy(r->auth_scheme, resp->auth_scheme);
			strcpy(r->realm, resp->realm);
			strcpy(r->nonce, resp->nonce);
			continue;
		}
		break;
	}
	r->last_ms = vg_clock_ns() / VG_NS_PER_MS;
	if (resp->status == 401)
		return vg_errf(err, errlen, -EACCES, "%s:%s: %s: credentials refused", r->host, r->port, method);
	if (resp->status != 200)
		return vg_errf(err, errlen, -EPROTO, "%s:%s: %s: status %d", r->host, r->port, method, resp->status);
	return 0;
}

static void control_url(const struct dp_rtsp *r, const char *control, char *out, size_t cap)
{
	if (!control[0] || !strcmp(control, "*"))
		snprintf(out, cap, "%s", r->base);
	else if (!strncmp(control, "rtsp://", 7))
		snprintf(out, cap, "%s", control);
	else
		snprintf(out, cap, "%s%s%s", r->base, r->base[strlen(r->base) - 1] == '/' ? "" : "/", control);
}

int dp_rtsp_open(struct dp_rtsp **out, const struct dp_rtsp_conf *conf, char *err, size_t errlen)
{
	struct dp_rtsp *r = calloc(1, sizeof(*r));
	struct dp_rtsp_response resp;
	char extra[256], uri[1100];
	int rc;

	if (!r)
		return -ENOMEM;
	r->fd = -1;
	r->timeout_ms = conf->timeout_ms ? conf->timeout_ms : 5000;
	rc = parse_url(r, conf->url, err, errlen);
	if (rc < 0)
		goto out_free;
	if (conf->user)
		snprintf(r->user, sizeof(r->user), "%s", conf->user);
	if (conf->password)
		snprintf(r->password, sizeof(r->password), "%s", conf->password);
	rc = connect_to(r, err, errlen);
	if (rc < 0)
		goto out_free;
	rc = request(r, "OPTIONS", r->url, NULL, &resp, err, errlen);
	if (rc < 0 && rc != -EACCES) /* some cameras want credentials even for OPTIONS */
		goto out_close;
	rc = request(r, "DESCRIBE", r->url, "Accept: application/sdp\r\n", &resp, err, errlen);
	if (rc < 0)
		goto out_close;
	snprintf(r->base, sizeof(r->base), "%s", resp.content_base[0] ? resp.content_base : r->url);
	if (!resp.body) {
		rc = vg_errf(err, errlen, -EBADMSG, "%s:%s: DESCRIBE: no SDP", r->host, r->port);
		goto out_close;
	}
	char sdp_err[128];
	rc = dp_sdp_parse(resp.body, resp.body_len, &r->sdp, sdp_err, sizeof(sdp_err));
	if (rc < 0 || r->sdp.n_media == 0) {
		rc = vg_errf(err, errlen, -EBADMSG, "%s:%s: DESCRIBE: %s", r->host, r->port,
			     rc < 0 ? sdp_err : "no H.264, H.265 or JPEG video");
		goto out_close;
	}
	for (unsigned i = 0; i < r->sdp.n_media; i++) {
		struct dp_sdp_media *m = &r->sdp.media[i];
		unsigned port = conf->client_port + 2 * i;
		snprintf(extra, sizeof(extra), "Transport: RTP/AVP;unicast;client_port=%u-%u\r\n", port, port + 1);
		control_url(r, m->control, uri, sizeof(uri));
		rc = request(r, "SETUP", uri, extra, &resp, err, errlen);
		if (rc < 0)
			goto out_close;
		if (!resp.session[0]) {
			rc = vg_errf(err, errlen, -EBADMSG, "%s:%s: SETUP: no session", r->host, r->port);
			goto out_close;
		}
		snprintf(r->session, sizeof(r->session), "%s", resp.session);
		r->session_timeout = resp.session_timeout;
		m->port = (uint16_t)port;
	}
	rc = request(r, "PLAY", r->base, "Range: npt=0.000-\r\n", &resp, err, errlen);
	if (rc < 0)
		goto out_close;
	*out = r;
	return 0;
out_close:
	close(r->fd);
out_free:
	vg_scrub(r->password, sizeof(r->password));
	free(r);
	return rc;
}

const struct dp_sdp *dp_rtsp_sdp(const struct dp_rtsp *r)
{
	return &r->sdp;
}

int dp_rtsp_keepalive(struct dp_rtsp *r, uint64_t now_ms)
{
	struct dp_rtsp_response resp;

	if (now_ms - r->last_ms < (uint64_t)r->session_timeout * 1000 / 2)
		return 0;
	return request(r, "GET_PARAMETER", r->base, NULL, &resp, NULL, 0);
}

int dp_rtsp_check(struct dp_rtsp *r)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	char c;

	if (poll(&p, 1, 0) <= 0)
		return 0;
	if (p.revents & (POLLERR | POLLHUP))
		return -ECONNRESET;
	/* Readable with no request outstanding: end of stream, or a server talking out of turn. */
	ssize_t n = recv(r->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN) ? -ECONNRESET : 0;
}

void dp_rtsp_close(struct dp_rtsp **rp)
{
	struct dp_rtsp *r = *rp;
	struct dp_rtsp_response resp;

	if (!r)
		return;
	if (r->session[0])
		request(r, "TEARDOWN", r->base, NULL, &resp, NULL, 0);
	close(r->fd);
	vg_scrub(r->password, sizeof(r->password));
	vg_scrub(r->user, sizeof(r->user));
	free(r);
	*rp = NULL;
}
