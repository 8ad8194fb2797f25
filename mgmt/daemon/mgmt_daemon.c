/*
 * vigild's management loop (mgmt.h: mgmt_daemon_run). One thread: poll on the control socket's
 * event set and a signalfd; deployment expiry every 250 ms whatever the clients do (invariant 7:
 * a window is enforced within 1 s of its end; mgmt_ctl_serve() never blocks on a client), the
 * live pipeline and gauges once a second. The metrics endpoint runs in libmicrohttpd's own thread
 * and reads only counters and atomics; camera probes run on the control socket's worker.
 */
#include <cap-ng.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gpu.h"
#include "match_calib.h"
#include "mgmt_daemon_int.h"
#include "mgmt_daemon_metrics.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_conf.h"
#include "vg_log.h"

static const struct vg_conf_entry daemon_entries[] = {
	VG_CONF_STRING("vigild.state_dir", VG_CONF_RESTART, struct mgmt_daemon_conf, state_dir, "/var/lib/vigil",
		       "where the state database and its audit anchor live (created 0700)"),
	VG_CONF_STRING("vigild.socket", VG_CONF_RESTART, struct mgmt_daemon_conf, socket_path, "/run/vigil/vigild.sock",
		       "the control socket vigilctl talks to"),
	VG_CONF_STRING("vigild.people", VG_CONF_MUTABLE, struct mgmt_daemon_conf, people, "0:root:admin",
		       "who may do what: UID:NAME:ROLE[+ROLE],... with roles admin, authoriser, operator, auditor"),
	VG_CONF_STRING("vigild.metrics_listen", VG_CONF_RESTART, struct mgmt_daemon_conf, metrics_listen,
		       "127.0.0.1:9464", "IPv4 ADDR:PORT for /metrics and /health (Prometheus); empty turns it off"),
	VG_CONF_STRING("vigild.log", VG_CONF_MUTABLE, struct mgmt_daemon_conf, log_levels, "notice",
		       "log levels: a level, then type=level overrides (e.g. notice,matcher=debug)"),
	VG_CONF_STRING("vigild.capture_iface", VG_CONF_RESTART, struct mgmt_daemon_conf, capture_iface, "",
		       "the interface cameras' RTP arrives on (net_af_packet); while a deployment is active, "
		       "vigild runs the pipeline over every camera on it; empty: no live capture"),
	VG_CONF_STRING("vigild.models", VG_CONF_RESTART, struct mgmt_daemon_conf, models_dir,
		       "/usr/share/vigil/face-api-1.7.15/model", "the face model's weights (tools/bootstrap fetches them)"),
	VG_CONF_INT("vigild.capture_rtsp_port", VG_CONF_RESTART, struct mgmt_daemon_conf, capture_rtsp_port, "40000",
		    1024, 58000, "first UDP port RTSP cameras send RTP to (camera i: this + 100 i)"),
	VG_CONF_ENUM("vigild.nets", VG_CONF_RESTART, struct mgmt_daemon_conf, capture_nets, "cpu", mgmt_capture_nets,
		     "where the live pipeline's face nets and matcher run: cpu, or GPU 0 (cuda: fp32 cuDNN; "
		     "cuda-fp16: the descriptor net in fp16; cuda-exact: the check mode)"),
	VG_CONF_ENUM("vigild.decode", VG_CONF_RESTART, struct mgmt_daemon_conf, capture_decode, "cpu",
		     mgmt_capture_decode, "how cameras are decoded: cpu, or cuda (NVDEC; with GPU nets the frames stay "
		     "on the GPU; a camera NVDEC cannot take is decoded on the CPU, counted)"),
	VG_CONF_INT("vigild.max_window_hours", VG_CONF_RESTART, struct mgmt_daemon_conf, max_window_hours, "744", 1, 8784,
		    "the longest window one authorisation may cover, in hours (a permanent site renews its "
		    "authorisation); requests for longer are refused"),
	VG_CONF_DOUBLE("vigild.max_expected_false_alerts", VG_CONF_RESTART, struct mgmt_daemon_conf,
		       max_expected_false_alerts, "0", 0, 1000,
		       "the most false alerts per 1,000 faces a deployment may be expected to raise (the upper end "
		       "of the model calibration's 95% interval); requests above it, or with no calibration to "
		       "state it, are refused; 0: no limit (the figure is still shown and audited)"),
	VG_CONF_INT("vigild.track_fusion", VG_CONF_RESTART, struct mgmt_daemon_conf, track_fusion, "0", 0, 8,
		    "match each track's best N sightings fused into one descriptor as well (2..8; raises "
		    "finding rates, holds a track's descriptors for its life, about a second); 0: off"),
	VG_CONF_INT("vigild.batch", VG_CONF_RESTART, struct mgmt_daemon_conf, capture_batch, "0", 0, 64,
		    "frames of all cameras per batch of the face nets (0: 1 on the CPU, 32 on a GPU)"),
};

const char *const mgmt_capture_nets[] = { "cpu", "cuda", "cuda-fp16", "cuda-exact", NULL };
const char *const mgmt_capture_decode[] = { "cpu", "cuda", NULL };

const struct vg_conf_table mgmt_daemon_conf_table = {
	"vigild", daemon_entries, VG_ARRAY_SIZE(daemon_entries), sizeof(struct mgmt_daemon_conf),
};

static const struct mgmt_actor vigild_actor = { "vigild", 0, 0 };

/* What the daemon knows of the model the capture runs: its identity and calibration. */
struct daemon_model {
	struct gpu_model_info info;
	bool identified;
	struct match_calib calib;
	bool calibrated;
};

/*
 * Identify the model in DIR and load the calibration beside it (bound to its digest). Neither is
 * fatal: without them the expected false alerts are "not stated" (and a policy limit refuses).
 */
static void model_load(struct daemon_model *m, const char *dir)
{
	char err[512], path[512];
	int rc;

	memset(m, 0, sizeof(*m));
	if ((rc = gpu_model_identify(dir, &m->info, err, sizeof(err))) < 0) {
		VG_LOG(MGMT, WARN, "the face model cannot be identified (%s): watchlists' models go unchecked", err);
		return;
	}
	m->identified = true;
	snprintf(path, sizeof(path), "%s/%s", dir, MATCH_CALIB_FILE);
	rc = match_calib_load(&m->calib, path, m->info.digest, err, sizeof(err));
	m->calibrated = rc == 0;
	if (rc < 0)
		VG_LOG(MGMT, WARN, "model %s: no calibration (%s): expected false alerts cannot be stated", m->info.id, err);
}

/* Tell systemd (Type=notify) what we are doing; a no-op outside systemd. */
static void sd_notify_state(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (!path || !*path || strlen(path) >= sizeof(sa.sun_path))
		return;
	memcpy(sa.sun_path, path, strlen(path));
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0'; /* abstract namespace */
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
	       (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path)));
	close(fd);
}

/*
 * Keep only what the stages need once set up: locking biometric pools in RAM (IPC_LOCK) and the
 * packet path (NET_RAW, NET_ADMIN). Not root: nothing to drop.
 */
static void drop_capabilities(void)
{
	if (geteuid() != 0)
		return;
	capng_clear(CAPNG_SELECT_BOTH);
	/* In the bounding set too: the live pipeline is a child (mgmt_capture.c) that needs them after exec. */
	capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET, CAP_IPC_LOCK, CAP_NET_RAW,
		      CAP_NET_ADMIN, -1);
	if (capng_apply(CAPNG_SELECT_BOTH) < 0)
		VG_LOG(MGMT, WARN, "could not drop capabilities; vigild keeps the ones it was started with");
}

/* What config.set changes in the running daemon (daemon_apply). */
struct daemon_live {
	struct mgmt_daemon_conf *conf;
	struct mgmt_ctl *ctl;
	struct mgmt_people **people;
	/* The map a config.set replaced: the caller's name points into it until its request ends. */
	struct mgmt_people *retired;
};

/* config.set's hook (mgmt.h mgmt_conf_apply_fn): the file's rules, all or nothing. */
static int daemon_apply(void *arg, const struct mgmt_actor *who, const char *name, const char *value, char *err,
			size_t errlen)
{
	struct daemon_live *d = arg;
	struct mgmt_daemon_conf next = *d->conf;
	const struct vg_conf_table *tables[] = { &mgmt_daemon_conf_table };
	void *objs[] = { &next };
	struct vg_conf_set set = { tables, objs, 1 };
	struct mgmt_people *new_people = NULL;
	struct mgmt_actor still;
	int rc;

	if ((rc = vg_conf_set_value(&set, name, value, true, err, errlen)) < 0 ||
	    (rc = mgmt_people_parse(&new_people, next.people, err, errlen)) < 0)
		return rc;
	/* A stored map outranks the file, so one that locks the admin out could not be undone. */
	if (strcmp(next.people, d->conf->people) != 0 &&
	    (mgmt_people_lookup(new_people, who->uid, &still) < 0 || !(still.roles & MGMT_ROLE_ADMIN))) {
		mgmt_people_free(&new_people);
		return vg_errf(err, errlen, -EPERM, "vigild.people: the new map would take the admin role from %s (uid %u)",
			       who->name, who->uid);
	}
	if (vg_log_set_levels(next.log_levels) < 0) {
		mgmt_people_free(&new_people);
		return vg_errf(err, errlen, -EINVAL, "vigild.log: '%.64s' is not a level spec", next.log_levels);
	}
	mgmt_ctl_set_people(d->ctl, new_people);
	mgmt_people_free(&d->retired);
	d->retired = *d->people;
	*d->people = new_people;
	*d->conf = next;
	return 0;
}

/* mgmt_setting_set()'s apply hook for a revocation a reload makes: reload() applies it itself. */
static int apply_in_reload(void *arg, const struct mgmt_actor *who, const char *name, const char *value, char *err,
			   size_t errlen)
{
	(void)arg, (void)who, (void)name, (void)value, (void)err, (void)errlen;
	return 0;
}

/*
 * A stored vigild.people (config set) outranks the file, so removing a person from the file used
 * to change nothing. A revocation must always take effect: every role the file took away since
 * OLD_FILE is taken from the stored map too, and the stored map rewritten (audited as config.set
 * by vigild) so that a restart keeps it revoked. NEXT holds the file with the stored settings over
 * it; its people become the revised map. Writes the revoked uids as JSON into WHAT. Returns how
 * many uids lost a role, or -errno with ERR.
 */
static int revoke_over_stored(struct mgmt_db *db, const struct vg_conf_set *set, struct mgmt_daemon_conf *next,
			      const char *old_file, const char *new_file, char *what, size_t whatlen, char *err,
			      size_t errlen)
{
	struct mgmt_people *current = NULL, *before = NULL, *after = NULL;
	char *revised = malloc(sizeof(next->people)), *old = malloc(sizeof(next->people) + 256);
	uint32_t uids[16];
	int n, rc = -ENOMEM;

	what[0] = '\0';
	if (!revised || !old)
		goto out_free;
	if ((rc = mgmt_people_parse(&current, next->people, err, errlen)) < 0 ||
	    (rc = mgmt_people_parse(&before, old_file, err, errlen)) < 0 ||
	    (rc = mgmt_people_parse(&after, new_file, err, errlen)) < 0)
		goto out_free;
	rc = n = mgmt_people_revoke(current, before, after, revised, sizeof(next->people), uids, 16);
	if (rc < 0) {
		vg_errf(err, errlen, rc, "vigild.people: the revised map is too long");
		goto out_free;
	}
	if (n == 0)
		goto out_free;
	rc = mgmt_setting_set(db, &vigild_actor, set, "vigild.people", revised, apply_in_reload, NULL, old,
			      sizeof(next->people) + 256, err, errlen);
	if (rc < 0)
		goto out_free;
	memcpy(next->people, revised, sizeof(next->people));
	size_t o = (size_t)snprintf(what, whatlen, "[");
	for (int i = 0; i < n && i < 16 && o < whatlen; i++)
		o += (size_t)snprintf(what + o, whatlen - o, "%s%u", i ? "," : "", uids[i]);
	if (o < whatlen)
		snprintf(what + o, whatlen - o, "]");
	VG_LOG(MGMT, NOTICE, "reload: the file revoked roles of %d uid(s) %s; applied over the stored vigild.people", n,
	       what);
	rc = n;
out_free:
	mgmt_people_free(&current);
	mgmt_people_free(&before);
	mgmt_people_free(&after);
	free(revised);
	free(old);
	return rc;
}

/*
 * SIGHUP: re-read the file; apply the run-time settings only if all of it parses. FILE_PEOPLE is
 * the file's vigild.people as last read; a reload updates it.
 */
static void reload(const char *config_path, struct mgmt_db *db, struct mgmt_ctl *ctl, struct mgmt_people **people,
		   struct mgmt_daemon_conf *live, char *file_people)
{
	struct mgmt_daemon_conf *next = malloc(sizeof(*next));
	char *new_file = malloc(sizeof(live->people));
	const struct vg_conf_table *tables[] = { &mgmt_daemon_conf_table };
	void *objs[] = { next };
	struct vg_conf_set set = { tables, objs, 1 };
	struct mgmt_people *new_people = NULL;
	char err[512] = "out of memory", detail[700], revoked[200] = "";

	if (!config_path || !next || !new_file)
		goto out_free;
	*next = *live;
	/* At run time: a changed restart-only setting is refused (the whole reload), not half-applied. */
	if (vg_conf_load_file(&set, config_path, true, err, sizeof(err)) < 0)
		goto out_refused;
	memcpy(new_file, next->people, sizeof(next->people));
	if (mgmt_settings_load(db, &set, err, sizeof(err)) < 0 ||
	    mgmt_people_parse(&new_people, new_file, err, sizeof(err)) < 0)
		goto out_refused;
	mgmt_people_free(&new_people);
	if (mgmt_setting_stored(db, "vigild.people") && strcmp(new_file, file_people) != 0 &&
	    revoke_over_stored(db, &set, next, file_people, new_file, revoked, sizeof(revoked), err, sizeof(err)) < 0)
		goto out_refused;
	if (mgmt_people_parse(&new_people, next->people, err, sizeof(err)) < 0)
		goto out_refused;
	if (vg_log_set_levels(next->log_levels) < 0) {
		snprintf(err, sizeof(err), "vigild.log: '%.64s' is not a level spec", next->log_levels);
		mgmt_people_free(&new_people);
		goto out_refused;
	}
	mgmt_ctl_set_people(ctl, new_people);
	mgmt_people_free(people);
	*people = new_people;
	*live = *next;
	memcpy(file_people, new_file, sizeof(live->people));
	snprintf(detail, sizeof(detail), "{\"applied\":true%s%s}", revoked[0] ? ",\"revoked_uids\":" : "", revoked);
	mgmt_audit_append(db, &vigild_actor, "config.reload", config_path, detail, NULL);
	VG_LOG(MGMT, NOTICE, "configuration reloaded from %s", config_path);
	goto out_free;

out_refused:
	VG_LOG(MGMT, ERR, "reload refused, nothing changed: %s", err);
	mgmt_audit_append(db, &vigild_actor, "config.reload", config_path, "{\"applied\":false}", NULL);
out_free:
	free(next);
	free(new_file);
}

/*
 * Settings changed with `vigilctl config set` outrank the file (mgmt_settings.c). One that no
 * longer parses is dropped for the file's, never a reason not to start. *PEOPLE is replaced when
 * a stored people map parses. Returns how many were applied, or -errno with ERR.
 */
static int load_stored_settings(struct mgmt_db *db, const struct vg_conf_set *live_set, struct mgmt_daemon_conf *live,
				struct mgmt_people **people, char *err, size_t errlen)
{
	char from_file_people[sizeof(live->people)], from_file_log[sizeof(live->log_levels)];
	int rc;

	memcpy(from_file_people, live->people, sizeof(live->people));
	memcpy(from_file_log, live->log_levels, sizeof(live->log_levels));
	rc = mgmt_settings_load(db, live_set, err, errlen);
	if (rc <= 0)
		return rc;
	struct mgmt_people *stored = NULL;

	if (mgmt_people_parse(&stored, live->people, err, errlen) < 0) {
		VG_LOG(MGMT, WARN, "stored vigild.people skipped: %s", err);
		memcpy(live->people, from_file_people, sizeof(live->people));
	} else {
		mgmt_people_free(people);
		*people = stored;
	}
	if (vg_log_set_levels(live->log_levels) < 0) {
		VG_LOG(MGMT, WARN, "stored vigild.log skipped: not a level spec");
		memcpy(live->log_levels, from_file_log, sizeof(live->log_levels));
	}
	return rc;
}

/*
 * One vigild per state directory: an exclusive flock on STATE_DIR/vigild.lock, taken before the
 * socket is touched, so a second instance can never unlink or rebind the first one's socket. The
 * lock dies with the process (a crash leaves no stale lock); the file keeps the holder's pid for
 * the loser's message. Returns the descriptor to keep open, or -errno with ERR.
 */
static int lock_state_dir(const char *state_dir, char *err, size_t errlen)
{
	char path[300], pid[24] = "";
	int fd, n;

	snprintf(path, sizeof(path), "%s/vigild.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return vg_errf(err, errlen, -errno, "%s: %s", path, vg_strerror(-errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int rc = errno == EWOULDBLOCK ? -EBUSY : -errno;

		n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (rc == -EBUSY)
			return vg_errf(err, errlen, rc, "another vigild serves %s (pid %s)", state_dir, pid[0] ? pid : "?");
		return vg_errf(err, errlen, rc, "%s: %s", path, vg_strerror(rc));
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		VG_LOG(MGMT, WARN, "%s: cannot record our pid; a second vigild will not name us", path);
	return fd;
}

/*
 * Every EXPIRE_EVERY_MS: end the deployments whose window closed. Windows end on whole seconds,
 * so an end is seen at most this late, far inside invariant 7's 1 s; the query is one indexed
 * SELECT that finds nothing almost every time.
 */
#define EXPIRE_EVERY_MS 250
static void expire(struct mgmt_db *db, struct mgmt_capture_purge *purge)
{
	/* A failed purge leaves the deployment active, to be retried: never ended with its file on disk. */
	if (mgmt_deployment_expire(db, (int64_t)time(NULL), mgmt_capture_purge_hook, purge) < 0)
		VG_LOG(MGMT, ERR, "expiring deployments failed; retrying in %d ms", EXPIRE_EVERY_MS);
}

/* Once a second (the TICKS-th time): the live pipeline, retried outcomes, the gauges. */
static void tick(struct mgmt_db *db, const struct mgmt_daemon_conf *live, struct mgmt_capture *capture,
		 struct mgmt_metrics *metrics, uint64_t ticks)
{
	int64_t entries, active;

	/* The live pipeline runs exactly while a deployment is active (mgmt_daemon_capture.c). */
	mgmt_capture_tick(capture, db, live, (int64_t)time(NULL));
	mgmt_metrics_set(metrics, MGMT_GAUGE_CAPTURE_RUNNING, capture->pid != 0);
	mgmt_metrics_set(metrics, MGMT_GAUGE_CAPTURE_FAILURES, capture->failures);
	/* Review outcomes the store could not take (a run held it) are retried every 30 s. */
	if (live->outcome && ticks % 30 == 0)
		live->outcome(live->outcome_arg, db);
	/* Enrolment crops of ended watchlists go once no alert needs them beside its evidence. */
	if (ticks % 30 == 0 && mgmt_watchlist_faces_release(db) < 0)
		VG_LOG(MGMT, WARN, "releasing ended watchlists' enrolment crops failed; retrying");
	if ((active = mgmt_deployment_count(db, MGMT_DEPLOYMENT_ACTIVE)) >= 0)
		mgmt_metrics_set(metrics, MGMT_GAUGE_DEPLOYMENTS_ACTIVE, active);
	if ((entries = mgmt_audit_count(db)) >= 0)
		mgmt_metrics_set(metrics, MGMT_GAUGE_AUDIT_ENTRIES, entries);
}

/* Block the signals before any thread starts (libmicrohttpd's, the stages'): threads inherit the
 * mask, so the signalfd the loop reads is the only place they are delivered. */
static void block_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

/* What the daemon lends the control socket's actions: settings, the probe, limits, the capture. */
static void lend_hooks(struct mgmt_ctl *ctl, const struct mgmt_daemon_conf *live, const struct vg_conf_set *live_set,
		       struct daemon_live *dl, struct mgmt_capture *capture, struct mgmt_capture_purge *purge)
{
	mgmt_ctl_set_conf(ctl, live_set, daemon_apply, dl);
	mgmt_ctl_set_probe(ctl, live->probe);
	mgmt_ctl_set_max_window(ctl, live->max_window_hours * 3600);
	/* A deployment's end stops its capture, then deletes the watchlist files this database
	 * registered (invariant 2). */
	mgmt_ctl_set_purge(ctl, mgmt_capture_purge_hook, purge);
	mgmt_ctl_set_capture(ctl, mgmt_capture_status, capture);
	mgmt_ctl_set_outcome(ctl, live->outcome, live->outcome_arg);
}

int mgmt_daemon_run(const struct mgmt_daemon_conf *conf, const char *config_path, char *err, size_t errlen)
{
	struct mgmt_daemon_conf live = *conf;
	struct mgmt_people *people = NULL;
	struct mgmt_metrics *metrics = NULL;
	struct mgmt_ctl *ctl = NULL;
	struct mgmt_db *db = NULL;
	char db_path[300], file_people[sizeof(live.people)];
	sigset_t mask;
	int sfd, lock_fd, rc;
	uint64_t last_tick = 0, last_expire = 0, ticks = 0;
	bool running = true;

	/* Nothing biometric may reach a core dump (invariant 1). */
	prctl(PR_SET_DUMPABLE, 0);
	block_signals(&mask);
	if (vg_log_set_levels(live.log_levels) < 0)
		return vg_errf(err, errlen, -EINVAL, "vigild.log: '%s' is not a level spec", live.log_levels);
	rc = mgmt_people_parse(&people, live.people, err, errlen);
	if (rc < 0)
		return rc;
	if (mkdir(live.state_dir, 0700) < 0 && errno != EEXIST) {
		rc = vg_errf(err, errlen, -errno, "%s: %s", live.state_dir, vg_strerror(-errno));
		goto out_free_people;
	}
	rc = lock_fd = lock_state_dir(live.state_dir, err, errlen);
	if (rc < 0)
		goto out_free_people;
	snprintf(db_path, sizeof(db_path), "%s/vigil.db", live.state_dir);
	rc = mgmt_db_open(&db, db_path, err, errlen);
	if (rc < 0)
		goto out_unlock;
	const struct vg_conf_table *live_tables[] = { &mgmt_daemon_conf_table };
	void *live_objs[] = { &live };
	struct vg_conf_set live_set = { live_tables, live_objs, 1 };
	memcpy(file_people, live.people, sizeof(file_people));
	rc = load_stored_settings(db, &live_set, &live, &people, err, errlen);
	if (rc < 0)
		goto out_close_db;
	rc = mgmt_ctl_open(&ctl, db, people, live.socket_path, err, errlen);
	if (rc < 0)
		goto out_close_db;
	struct daemon_live dl = { &live, ctl, &people, NULL };
	struct mgmt_capture capture = { 0 };
	struct mgmt_capture_purge purge = { &capture, db };
	lend_hooks(ctl, &live, &live_set, &dl, &capture, &purge);
	struct daemon_model model;
	model_load(&model, live.models_dir);
	mgmt_ctl_set_model(ctl, model.identified ? model.info.id : NULL, model.calibrated ? &model.calib : NULL,
			   live.max_expected_false_alerts);
	if (live.metrics_listen[0]) {
		rc = mgmt_metrics_start(&metrics, live.metrics_listen, NULL, err, errlen);
		if (rc < 0)
			goto out_close_ctl;
		char textfile[320];
		snprintf(textfile, sizeof(textfile), "%s/runs/metrics.prom", live.state_dir);
		mgmt_metrics_set_textfile(metrics, textfile);
	}
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		rc = vg_errf(err, errlen, -errno, "signalfd: %s", vg_strerror(-errno));
		goto out_stop_metrics;
	}
	drop_capabilities();
	mgmt_metrics_set(metrics, MGMT_GAUGE_UP_SINCE, (int64_t)time(NULL));
	/* which model and calibration this run judges requests by, on the record */
	char start_detail[256];
	snprintf(start_detail, sizeof(start_detail), "{\"model\":\"%s\",\"calibration\":\"%s\"}",
		 model.identified ? model.info.id : "", model.calibrated ? model.calib.seal : "");
	mgmt_audit_append(db, &vigild_actor, "vigild.start", live.state_dir, start_detail, NULL);
	sd_notify_state("READY=1\nSTATUS=serving");
	VG_LOG(MGMT, NOTICE, "serving on %s", live.socket_path);

	while (running) {
		struct pollfd pfd[2] = { { .fd = mgmt_ctl_fd(ctl), .events = POLLIN }, { .fd = sfd, .events = POLLIN } };
		uint64_t now = vg_clock_ns(), next = last_expire + EXPIRE_EVERY_MS * VG_NS_PER_MS;
		int wait_ms = next > now ? (int)((next - now + VG_NS_PER_MS - 1) / VG_NS_PER_MS) : 0;
		int ctl_ms = mgmt_ctl_timeout_ms(ctl);

		/* Never past the next expiry check, nor past a client's deadline. */
		if (ctl_ms >= 0 && ctl_ms < wait_ms)
			wait_ms = ctl_ms;
		if (poll(pfd, 2, wait_ms) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					reload(config_path, db, ctl, &people, &live, file_people);
				else
					running = false;
			}
		}
		if (running) {
			/* Also with nothing readable: it enforces the clients' deadlines. */
			int served = mgmt_ctl_serve(ctl, 0);
			if (served > 0)
				mgmt_metrics_add(metrics, MGMT_GAUGE_CTL_REQUESTS, served);
		}
		now = vg_clock_ns();
		if (now - last_expire >= EXPIRE_EVERY_MS * VG_NS_PER_MS) {
			last_expire = now;
			expire(db, &purge);
		}
		if (now - last_tick >= VG_NS_PER_SEC) {
			last_tick = now;
			tick(db, &live, &capture, metrics, ++ticks);
		}
	}
	/* Connections still open are dropped (a running probe is waited for) when the socket closes. */
	sd_notify_state("STOPPING=1");
	mgmt_capture_stop(&capture, db, "vigild is stopping");
	mgmt_audit_append(db, &vigild_actor, "vigild.stop", live.state_dir, NULL, NULL);
	VG_LOG(MGMT, NOTICE, "stopped");
	close(sfd);
	rc = 0;
out_stop_metrics:
	mgmt_metrics_stop(&metrics);
out_close_ctl:
	mgmt_ctl_close(&ctl);
	match_calib_free(&model.calib);
	mgmt_people_free(&dl.retired);
out_close_db:
	mgmt_db_close(&db);
out_unlock:
	close(lock_fd); /* after the socket is gone: the next vigild may bind it */
out_free_people:
	mgmt_people_free(&people);
	return rc;
}
