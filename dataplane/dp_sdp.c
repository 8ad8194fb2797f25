/*
 * SDP (RFC 4566) for what a camera's DESCRIBE says about its video: the m= lines, rtpmap, fmtp
 * (packetization mode, sprop parameter sets) and control. Lines are read with their length,
 * never past LEN; every copy into the fixed fields is bounded. O(len).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dp.h"
#include "vg_base.h"

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

/* Decode base64 S[0..n) after a start code into M's params. -EBADMSG if bad or too long. */
static int add_param_set(struct dp_sdp_media *m, const char *s, size_t n)
{
	uint8_t tmp[sizeof(m->params)];
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] == '=')
			break;
		int v = b64_value(s[i]);
		if (v < 0)
			return -EBADMSG;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o >= sizeof(tmp))
				return -EBADMSG;
			tmp[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (o == 0)
		return 0;
	if (m->params_len + 4 + o > sizeof(m->params))
		return -EBADMSG;
	memcpy(m->params + m->params_len, "\0\0\0\1", 4);
	memcpy(m->params + m->params_len + 4, tmp, o);
	m->params_len += 4 + o;
	return 0;
}

static int parse_uint(const char *s, size_t n, size_t *used, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	size_t i = 0;

	while (i < n && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (unsigned long)(s[i] - '0');
		if (v > max)
			return -EBADMSG;
		i++;
	}
	if (i == 0)
		return -EBADMSG;
	*used = i;
	*out = v;
	return 0;
}

static bool starts(const char *s, size_t n, const char *lit)
{
	size_t l = strlen(lit);
	return n >= l && memcmp(s, lit, l) == 0;
}

/* fmtp parameters: "a=b; c=d"; sprop sets are comma-separated base64. */
static int parse_fmtp(struct dp_sdp_media *m, const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		while (i < n && (s[i] == ' ' || s[i] == ';'))
			i++;
		size_t k = i;
		while (i < n && s[i] != '=' && s[i] != ';')
			i++;
		size_t klen = i - k;
		if (i >= n || s[i] != '=')
			continue;
		i++;
		size_t v = i;
		while (i < n && s[i] != ';')
			i++;
		size_t vlen = i - v;
		while (vlen && s[v + vlen - 1] == ' ')
			vlen--;
		if (klen == 18 && !strncasecmp(s + k, "packetization-mode", 18)) {
			m->packetization_mode = vlen == 1 && s[v] == '1' ? 1 : vlen == 1 && s[v] == '0' ? 0 : -1;
			if (m->packetization_mode < 0)
				return -EBADMSG;
		} else if ((klen == 20 && !strncasecmp(s + k, "sprop-parameter-sets", 20)) ||
			   (klen == 9 && (!strncasecmp(s + k, "sprop-vps", 9) || !strncasecmp(s + k, "sprop-sps", 9) ||
					  !strncasecmp(s + k, "sprop-pps", 9)))) {
			size_t j = v, end = v + vlen;
			while (j < end) {
				size_t e = j;
				while (e < end && s[e] != ',')
					e++;
				if (add_param_set(m, s + j, e - j) < 0)
					return -EBADMSG;
				j = e + 1;
			}
		}
	}
	return 0;
}

/* An m= line: a video section we keep makes *CUR; any other section ends the current one. */
static int sdp_media_line(struct dp_sdp *sdp, const char *s, size_t n, unsigned line, struct dp_sdp_media **cur,
			  char *err, size_t errlen)
{
	*cur = NULL;
	if (!starts(s, n, "m=video "))
		return 0;
	unsigned long port, pt;
	size_t used, i = 8;
	if (parse_uint(s + i, n - i, &used, 65535, &port) < 0)
		return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad port in m=", line);
	i += used;
	if (i < n && s[i] == '/') { /* port count */
		unsigned long cnt;
		i++;
		if (parse_uint(s + i, n - i, &used, 65535, &cnt) < 0)
			return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad port count", line);
		i += used;
	}
	while (i < n && s[i] != ' ')
		i++; /* " RTP/AVP" */
	i++;
	while (i < n && s[i] != ' ')
		i++;
	i++;
	if (i >= n || parse_uint(s + i, n - i, &used, 127, &pt) < 0)
		return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad payload type in m=", line);
	if (sdp->n_media >= DP_SDP_MAX_MEDIA)
		return vg_errf(err, errlen, -EBADMSG, "sdp line %u: more than %d video streams", line, DP_SDP_MAX_MEDIA);
	*cur = &sdp->media[sdp->n_media++];
	(*cur)->port = (uint16_t)port;
	(*cur)->pt = (uint8_t)pt;
	(*cur)->clock_rate = 90000;
	(*cur)->packetization_mode = 0;
	if (pt == 26)
		(*cur)->codec = DP_CODEC_MJPEG;
	return 0;
}

/* The encoding name and clock rate of an a=rtpmap: for CUR's payload type, from S[i..n). */
static int sdp_rtpmap(struct dp_sdp_media *cur, const char *s, size_t i, size_t n, unsigned line, char *err,
		      size_t errlen)
{
	size_t used;

	if (starts(s + i, n - i, "H264/") || starts(s + i, n - i, "h264/"))
		cur->codec = DP_CODEC_H264;
	else if (starts(s + i, n - i, "H265/") || starts(s + i, n - i, "h265/"))
		cur->codec = DP_CODEC_H265;
	else if (starts(s + i, n - i, "JPEG/") || starts(s + i, n - i, "jpeg/"))
		cur->codec = DP_CODEC_MJPEG;
	else
		cur->codec = DP_CODEC_NONE;
	while (i < n && s[i] != '/')
		i++;
	unsigned long rate;
	if (i + 1 >= n || parse_uint(s + i + 1, n - i - 1, &used, 1000000, &rate) < 0 || rate == 0)
		return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad clock rate", line);
	cur->clock_rate = (uint32_t)rate;
	return 0;
}

/* An a= line inside a video section we keep: rtpmap and fmtp of its payload type, control. */
static int sdp_attr_line(struct dp_sdp_media *cur, const char *s, size_t n, unsigned line, char *err, size_t errlen)
{
	if (starts(s, n, "a=rtpmap:") || starts(s, n, "a=fmtp:")) {
		bool rtpmap = s[2] == 'r';
		size_t i = rtpmap ? 9 : 7, used;
		unsigned long pt;
		if (parse_uint(s + i, n - i, &used, 127, &pt) < 0)
			return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad payload type", line);
		if (pt != cur->pt)
			return 0;
		i += used;
		while (i < n && s[i] == ' ')
			i++;
		if (rtpmap)
			return sdp_rtpmap(cur, s, i, n, line, err, errlen);
		if (parse_fmtp(cur, s + i, n - i) < 0)
			return vg_errf(err, errlen, -EBADMSG, "sdp line %u: bad fmtp", line);
	} else if (starts(s, n, "a=control:")) {
		size_t l = n - 10;
		if (l >= sizeof(cur->control))
			return vg_errf(err, errlen, -EBADMSG, "sdp line %u: control URL too long", line);
		memcpy(cur->control, s + 10, l);
		cur->control[l] = 0;
	}
	return 0;
}

int dp_sdp_parse(const char *text, size_t len, struct dp_sdp *out, char *err, size_t errlen)
{
	struct dp_sdp *sdp = calloc(1, sizeof(*sdp));
	struct dp_sdp_media *cur = NULL; /* the video m= section we are in, if one we keep */
	size_t pos = 0;
	unsigned line = 0;
	int rc = 0;

	if (!sdp)
		return -ENOMEM;
	while (pos < len) {
		size_t e = pos;
		while (e < len && text[e] != '\n')
			e++;
		const char *s = text + pos;
		size_t n = e - pos;
		if (n && s[n - 1] == '\r')
			n--;
		pos = e + 1;
		line++;
		if (n == 0)
			continue;
		if (n < 2 || s[1] != '=') {
			rc = vg_errf(err, errlen, -EBADMSG, "sdp line %u: not <type>=<value>", line);
			goto out_free;
		}
		if (starts(s, n, "m="))
			rc = sdp_media_line(sdp, s, n, line, &cur, err, errlen);
		else if (cur)
			rc = sdp_attr_line(cur, s, n, line, err, errlen);
		if (rc < 0)
			goto out_free;
	}
	/* Keep only the streams we can depacketize, in m= order. */
	unsigned k = 0;
	for (unsigned i = 0; i < sdp->n_media; i++)
		if (sdp->media[i].codec != DP_CODEC_NONE)
			sdp->media[k++] = sdp->media[i];
	sdp->n_media = k;
	memcpy(out, sdp, sizeof(*sdp));
out_free:
	free(sdp);
	return rc;
}
