/*
 * /metrics and /health over HTTP (libmicrohttpd, its own thread): every stage's counters in the
 * Prometheus text format (vg_counter.h) plus mgmt's gauges. Read-only, no request body accepted,
 * nothing biometric is ever in a counter.
 */
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "mgmt_daemon_metrics.h"
#include "vg_base.h"
#include "vg_counter.h"

#define METRICS_BUF (256u << 10)

struct mgmt_metrics {
	struct MHD_Daemon *mhd;
	_Atomic int64_t gauges[MGMT_GAUGE__COUNT];
	_Atomic(char *) textfile; /* the live pipeline's own metrics (mgmt_metrics_set_textfile) */
};

#define TEXTFILE_FRESH_S 10 /* older than this, the pipeline that wrote it is gone: not shown */

/* Append the pipeline's metrics file to BODY at LEN, if it is fresh. Returns the new length. */
static int append_textfile(struct mgmt_metrics *m, char *body, int len)
{
	const char *path = atomic_load_explicit(&m->textfile, memory_order_acquire);
	struct stat sb;
	FILE *f;

	if (!path || stat(path, &sb) < 0 || time(NULL) - sb.st_mtime > TEXTFILE_FRESH_S || !(f = fopen(path, "r")))
		return len;
	size_t n = fread(body + len, 1, METRICS_BUF - (size_t)len - 1, f);
	fclose(f);
	return len + (int)n;
}

void mgmt_metrics_set_textfile(struct mgmt_metrics *m, const char *path)
{
	char *copy = path ? strdup(path) : NULL;

	if (!m) {
		free(copy);
		return;
	}
	/* Set once at start-up, before the first request can read it; the old one (none) is freed. */
	free(atomic_exchange_explicit(&m->textfile, copy, memory_order_acq_rel));
}

static const char *const gauge_names[MGMT_GAUGE__COUNT][2] = {
	[MGMT_GAUGE_DEPLOYMENTS_ACTIVE] = { "vigil_deployments_active", "deployments matching now" },
	[MGMT_GAUGE_AUDIT_ENTRIES] = { "vigil_audit_entries", "entries in the audit log" },
	[MGMT_GAUGE_CTL_REQUESTS] = { "vigil_ctl_requests_total", "control socket requests served" },
	[MGMT_GAUGE_UP_SINCE] = { "vigil_start_time_seconds", "when vigild started (Unix seconds)" },
	[MGMT_GAUGE_CAPTURE_RUNNING] = { "vigil_capture_running", "1 while the live pipeline runs for a deployment" },
	[MGMT_GAUGE_CAPTURE_FAILURES] = { "vigil_capture_failures_total", "times the live pipeline ended on its own" },
};

void mgmt_metrics_set(struct mgmt_metrics *m, enum mgmt_gauge g, int64_t v)
{
	if (m)
		atomic_store_explicit(&m->gauges[g], v, memory_order_relaxed);
}

void mgmt_metrics_add(struct mgmt_metrics *m, enum mgmt_gauge g, int64_t v)
{
	if (m)
		atomic_fetch_add_explicit(&m->gauges[g], v, memory_order_relaxed);
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
			      const char *version, const char *upload, size_t *upload_len, void **state)
{
	struct mgmt_metrics *m = cls;
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = MHD_HTTP_OK;
	char *body;
	int len = 0;

	(void)version;
	(void)upload;
	(void)state;
	if (strcmp(method, "GET") != 0 || *upload_len) {
		body = strdup("method not allowed\n");
		status = MHD_HTTP_METHOD_NOT_ALLOWED;
		len = body ? (int)strlen(body) : 0;
	} else if (strcmp(url, "/health") == 0) {
		body = strdup("ok\n");
		len = body ? 3 : 0;
	} else if (strcmp(url, "/metrics") == 0) {
		body = malloc(METRICS_BUF);
		len = body ? vg_counters_format_prometheus(body, METRICS_BUF) : -ENOMEM;
		for (int g = 0; body && len >= 0 && g < MGMT_GAUGE__COUNT; g++) {
			int n = snprintf(body + len, METRICS_BUF - (size_t)len, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n",
					 gauge_names[g][0], gauge_names[g][1], gauge_names[g][0], gauge_names[g][0],
					 (long long)atomic_load_explicit(&m->gauges[g], memory_order_relaxed));
			len = n < 0 || (size_t)n >= METRICS_BUF - (size_t)len ? -ENOSPC : len + n;
		}
		if (len >= 0)
			len = append_textfile(m, body, len);
		if (len < 0) {
			free(body);
			body = strdup("metrics unavailable\n");
			len = body ? (int)strlen(body) : 0;
			status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		}
	} else {
		body = strdup("not found: try /metrics or /health\n");
		len = body ? (int)strlen(body) : 0;
		status = MHD_HTTP_NOT_FOUND;
	}
	if (!body)
		return MHD_NO;
	resp = MHD_create_response_from_buffer((size_t)len, body, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

int mgmt_metrics_start(struct mgmt_metrics **out, const char *listen, uint16_t *bound_port, char *err, size_t errlen)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	char host[64];
	const char *colon = strrchr(listen, ':');
	struct mgmt_metrics *m;
	unsigned long port;
	char *end;

	if (!colon || (size_t)(colon - listen) >= sizeof(host))
		return vg_errf(err, errlen, -EINVAL, "metrics listen address '%s' is not ADDR:PORT", listen);
	memcpy(host, listen, (size_t)(colon - listen));
	host[colon - listen] = '\0';
	port = strtoul(colon + 1, &end, 10);
	if (*end || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return vg_errf(err, errlen, -EINVAL, "metrics listen address '%s' is not IPv4-ADDR:PORT", listen);
	sa.sin_port = htons((uint16_t)port);
	m = calloc(1, sizeof(*m));
	if (!m)
		return vg_errf(err, errlen, -ENOMEM, "out of memory");
	m->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, answer, m,
				  MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT, 16u,
				  MHD_OPTION_CONNECTION_TIMEOUT, 5u, MHD_OPTION_END);
	if (!m->mhd) {
		free(m);
		return vg_errf(err, errlen, -EADDRINUSE, "cannot serve metrics on %s", listen);
	}
	if (bound_port) {
		const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
		*bound_port = info ? info->port : (uint16_t)port;
	}
	*out = m;
	return 0;
}

void mgmt_metrics_stop(struct mgmt_metrics **pm)
{
	if (!*pm)
		return;
	MHD_stop_daemon((*pm)->mhd);
	struct mgmt_metrics *m = *pm;
	char *textfile = atomic_load_explicit(&m->textfile, memory_order_acquire);
	free(textfile);
	free(*pm);
	*pm = NULL;
}
