/* mgmt's metrics endpoint (private to mgmt/): stage counters plus these gauges. */
#ifndef MGMT_METRICS_H
#define MGMT_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum mgmt_gauge {
	MGMT_GAUGE_DEPLOYMENTS_ACTIVE,
	MGMT_GAUGE_AUDIT_ENTRIES,
	MGMT_GAUGE_CTL_REQUESTS,
	MGMT_GAUGE_UP_SINCE,
	MGMT_GAUGE_CAPTURE_RUNNING,
	MGMT_GAUGE_CAPTURE_FAILURES,
	MGMT_GAUGE__COUNT
};

struct mgmt_metrics;

/* Serve on LISTEN ("ADDR:PORT"; port 0 picks one, written to *BOUND_PORT). */
int mgmt_metrics_start(struct mgmt_metrics **out, const char *listen, uint16_t *bound_port, char *err, size_t errlen);
void mgmt_metrics_stop(struct mgmt_metrics **m);
void mgmt_metrics_set(struct mgmt_metrics *m, enum mgmt_gauge g, int64_t v);
void mgmt_metrics_add(struct mgmt_metrics *m, enum mgmt_gauge g, int64_t v);
/* /metrics also shows the Prometheus text at PATH while it is fresh (written in the last 10 s):
 * the live pipeline's counters, which it writes from its own process. Call before serving. */
void mgmt_metrics_set_textfile(struct mgmt_metrics *m, const char *path);

#endif
