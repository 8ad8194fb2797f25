/*
 * Matching uses exactly the watchlists the deployment's authorisation names (DESIGN.md invariant
 * 2): each from vigild's custody, by the seal bound when the deployment was requested, its bytes
 * checked against that seal as they are read, and the seals used audited with the run. A file
 * given on the command line is only accepted as the custody file of one of them. Analysis
 * thread not yet running: called from pipeline_open().
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pipeline_int.h"
#include "vg_file.h"

#define WATCHLIST_FILE_MAX ((size_t)16 << 30) /* match_load_file's own cap */
#define SEAL_BYTES 32                         /* the file's last bytes: sha256 of all before them */

struct custody {
	struct mgmt_watchlist w[PIPELINE_WATCHLISTS_MAX];
	char bound[PIPELINE_WATCHLISTS_MAX][65];
	unsigned n;
	bool overflow;
};

static void collect(void *arg, const struct mgmt_watchlist *w, const char *bound_seal)
{
	struct custody *c = arg;

	if (c->n >= PIPELINE_WATCHLISTS_MAX) {
		c->overflow = true;
		return;
	}
	c->w[c->n] = *w;
	snprintf(c->bound[c->n++], sizeof(c->bound[0]), "%s", bound_seal);
}

/* Whether every file of the comma-separated LIST is the custody file of one of C's watchlists. */
static int given_files_in_custody(const struct custody *c, const char *list, char *err, size_t errlen)
{
	for (const char *f = list; f && *f;) {
		size_t len = strcspn(f, ",");
		char file[PATH_MAX], real[PATH_MAX], custody_real[PATH_MAX];
		bool found = false;

		if (len >= sizeof(file))
			return vg_errf(err, errlen, -ENAMETOOLONG, "watchlist path too long");
		memcpy(file, f, len);
		file[len] = '\0';
		for (unsigned i = 0; i < c->n && !found; i++)
			found = realpath(file, real) && realpath(c->w[i].path, custody_real) && strcmp(real, custody_real) == 0;
		if (!found)
			return vg_errf(err, errlen, -EPERM,
				       "--watchlist %.200s is not a watchlist in vigild's custody that this deployment "
				       "names: matching takes the authorised watchlists from custody (omit --watchlist)",
				       file);
		f += len + (f[len] == ',');
	}
	return 0;
}

/* Read custody file I, check it against the bound seal, and load it into the matcher. */
static int load_one(struct pipeline *p, const struct custody *c, unsigned i, char *err, size_t errlen)
{
	const struct mgmt_watchlist *w = &c->w[i];
	char hex[2 * SEAL_BYTES + 1];
	uint8_t *buf;
	size_t len;
	int rc;

	if (w->state != MGMT_WATCHLIST_LIVE)
		return vg_errf(err, errlen, -ESTALE, "watchlist %s was %s: matching refused", w->id,
			       mgmt_watchlist_state_name(w->state));
	if (!c->bound[i][0] || strcmp(c->bound[i], w->sha256) != 0)
		return vg_errf(err, errlen, -EPERM, "watchlist %s is not the one deployment %" PRId64
			       "'s authorisation sealed: matching refused", w->id, p->conf.deployment);
	rc = vg_file_read(w->path, WATCHLIST_FILE_MAX, &buf, &len);
	if (rc < 0)
		return vg_errf(err, errlen, rc, "watchlist %s in custody: %s", w->id, vg_strerror(rc));
	/* The seal of the bytes read, not of the file as it was when registered: one read, one check. */
	if (len >= SEAL_BYTES)
		sodium_bin2hex(hex, sizeof(hex), buf + len - SEAL_BYTES, SEAL_BYTES);
	if (len < SEAL_BYTES || strcmp(hex, c->bound[i]) != 0)
		rc = vg_errf(err, errlen, -EBADMSG, "watchlist %s in custody no longer carries its seal: matching refused",
			     w->id);
	else
		rc = match_load(p->match, buf, len, err, errlen); /* checks the seal against the bytes */
	vg_scrub(buf, len); /* descriptors: biometric */
	free(buf);
	if (rc < 0)
		return rc;
	p->watchlists[p->n_watchlists].id = (uint32_t)strtoul(w->id, NULL, 10);
	snprintf(p->watchlists[p->n_watchlists++].seal, sizeof(p->watchlists[0].seal), "%s", c->bound[i]);
	return 0;
}

static void audit_run(struct mgmt_db *db, const struct pipeline *p, const char *run_desc, const char *refusal)
{
	struct mgmt_actor who = { "vigild-run", (uint32_t)getuid(), 0 };
	char object[64], detail[6000], seals[5000] = "";
	size_t used = 0;

	for (unsigned i = 0; i < p->n_watchlists && used < sizeof(seals) - 100; i++)
		used += (size_t)snprintf(seals + used, sizeof(seals) - used, "%s{\"id\":%u,\"seal\":\"%s\"}",
					 i ? "," : "", p->watchlists[i].id, p->watchlists[i].seal);
	snprintf(object, sizeof(object), "deployment/%" PRId64, p->conf.deployment);
	/* The run's description is vigild's own text (its options); a quote in a path is dropped so the
	 * detail stays JSON. */
	char desc[600];
	size_t k = 0;
	for (const char *s = run_desc; *s && k < sizeof(desc) - 1; s++)
		if (*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
			desc[k++] = *s;
	desc[k] = '\0';
	if (refusal)
		snprintf(detail, sizeof(detail), "{\"run\":\"%s\",\"allowed\":false,\"why\":\"%.300s\"}", desc, refusal);
	else
		snprintf(detail, sizeof(detail), "{\"run\":\"%s\",\"allowed\":true,\"watchlists\":[%s]}", desc, seals);
	/* Every matching run is audited with the seals it used, refused or not. */
	mgmt_audit_append(db, &who, refusal ? "run.recorded.refused" : "run.recorded", object, detail, NULL);
}

int pipeline_custody_load(struct pipeline *p, struct mgmt_db *db, const char *run_desc, char *err, size_t errlen)
{
	struct custody *c = calloc(1, sizeof(*c));
	int rc = c ? 0 : vg_errf(err, errlen, -ENOMEM, "out of memory");

	if (rc == 0 && mgmt_deployment_watchlists(db, p->conf.deployment, collect, c) < 0)
		rc = vg_errf(err, errlen, -EIO, "deployment %" PRId64 ": its watchlists cannot be read", p->conf.deployment);
	if (rc == 0 && (c->n == 0 || c->overflow))
		rc = vg_errf(err, errlen, -EPERM, "deployment %" PRId64 " names %s watchlists: matching refused",
			     p->conf.deployment, c->n ? "too many" : "no");
	if (rc == 0 && p->conf.watchlist_path)
		rc = given_files_in_custody(c, p->conf.watchlist_path, err, errlen);
	for (unsigned i = 0; rc == 0 && i < c->n; i++)
		rc = load_one(p, c, i, err, errlen);
	audit_run(db, p, run_desc, rc < 0 ? err : NULL);
	free(c);
	return rc;
}
