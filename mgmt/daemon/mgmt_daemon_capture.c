/*
 * vigild serve runs the live pipeline (mgmt_daemon_int.h: mgmt_capture_*). While a deployment is active,
 * inside its window, with watchlists in vigild's custody and cameras configured, one child
 *
 *   vigild run --iface IFACE --rtsp-file /proc/self/fd/3 --rtsp-port PORT --models DIR
 *              --watchlist W[,W...] --state-dir STATE --deployment ID --report STATE/runs/...json
 *
 * receives, decodes, analyses and matches; it records alerts in the state database for review as
 * a recorded run does (the code path the end-to-end tests prove). A child of its own because
 * DPDK's EAL starts once per process, and so that the pipeline failing never takes the control
 * socket down: a child that dies is started again, with back-off from 1 s doubling to 60 s.
 *
 * The cameras go to the child on an inherited memfd (fd 3), never on its command line, which
 * every local user can read in /proc; their credentials are unsealed only to be written there,
 * and the buffer that held them is zeroed.
 *
 * Invariant 2: the child is stopped (SIGTERM, then SIGKILL after 10 s) before a deployment that
 * ends has its watchlists purged (mgmt_capture_purge_hook), and at every tick where its
 * deployment is no longer active or its cameras changed. Every start, stop and exit is audited.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mgmt_daemon_int.h"
#include "vg_base.h"
#include "vg_clock.h"
#include "vg_log.h"

#define CAPTURE_BACKOFF_MAX_S 60
#define CAPTURE_STOP_WAIT_MS 10000
#define CAPTURE_CAMERAS_MAX 16 /* vigild run's MAX_RTSP */

static const struct mgmt_actor vigild_actor = { "vigild", 0, 0 };

/* Deployment ID's live watchlist files, comma-separated, into OUT. Returns how many. */
struct path_list {
	char *out;
	size_t len, used;
	int n;
};

static void add_path(void *arg, const struct mgmt_watchlist *w, const char *bound_seal)
{
	struct path_list *l = arg;
	int k;

	/* Only what the authorisation bound; the run checks the seal again as it loads the file. */
	if (l->n < 0 || w->state != MGMT_WATCHLIST_LIVE || strcmp(bound_seal, w->sha256) != 0)
		return;
	k = snprintf(l->out + l->used, l->len - l->used, "%s%s", l->n ? "," : "", w->path);
	if (k < 0 || (size_t)k >= l->len - l->used) {
		l->n = -ENAMETOOLONG;
		return;
	}
	l->used += (size_t)k;
	l->n++;
}

static int watchlist_files(struct mgmt_db *db, int64_t id, char *out, size_t len)
{
	struct path_list l = { out, len, 0, 0 };

	out[0] = '\0';
	if (mgmt_deployment_watchlists(db, id, add_path, &l) < 0)
		return -EIO;
	return l.n;
}

/*
 * The cameras as vigild run's --rtsp-file lines (NAME TAB FPS TAB URL [TAB USER TAB PASSWORD]),
 * credentials unsealed, into BUF; the camera set's signature (without the credentials' values)
 * into SIG. Returns the number of cameras, or -errno. The caller zeroes BUF.
 */
struct camera_lines {
	char *buf;
	size_t len, used;
	crypto_generichash_state h;
	char *why;
	size_t whylen;
	int n;
	bool full;
	struct mgmt_db *db;
};

static void add_camera_line(void *arg, const struct mgmt_camera *cam)
{
	struct camera_lines *l = arg;
	const char *id = cam->id, *url = cam->url;
	int64_t fps = cam->fps;
	char user[MGMT_CREDENTIAL_MAX], password[MGMT_CREDENTIAL_MAX], line[1600];
	int w;

	if (l->full)
		return;
	if (l->n >= CAPTURE_CAMERAS_MAX) {
		snprintf(l->why, l->whylen, "more than %d cameras: the first %d are analysed", CAPTURE_CAMERAS_MAX,
			 CAPTURE_CAMERAS_MAX);
		l->full = true;
		return;
	}
	int rc = mgmt_camera_credentials(l->db, id, user, password);
	if (rc < 0) {
		snprintf(l->why, l->whylen, "camera %s: its credentials do not unseal (%s): left out", id, vg_strerror(rc));
		return;
	}
	if (user[0] || password[0])
		w = snprintf(line, sizeof(line), "%s\t%" PRId64 "\t%s\t%s\t%s\n", id, fps, url, user, password);
	else
		w = snprintf(line, sizeof(line), "%s\t%" PRId64 "\t%s\n", id, fps, url);
	sodium_memzero(user, sizeof(user));
	sodium_memzero(password, sizeof(password));
	if (w < 0 || (size_t)w >= sizeof(line) || (size_t)w >= l->len - l->used) {
		sodium_memzero(line, sizeof(line));
		snprintf(l->why, l->whylen, "camera %s: its URL is too long: left out", id);
		return;
	}
	memcpy(l->buf + l->used, line, (size_t)w + 1);
	l->used += (size_t)w;
	crypto_generichash_update(&l->h, (const unsigned char *)id, strlen(id) + 1);
	crypto_generichash_update(&l->h, (const unsigned char *)url, strlen(url) + 1);
	crypto_generichash_update(&l->h, (const unsigned char *)&fps, sizeof(fps));
	/* New credentials for the same URL restart the capture too (the hash stays in memory). */
	crypto_generichash_update(&l->h, (const unsigned char *)line, (size_t)w);
	sodium_memzero(line, sizeof(line));
	l->n++;
}

static int camera_lines(struct mgmt_db *db, char *buf, size_t len, char sig[65], char *why, size_t whylen)
{
	struct camera_lines l = { .buf = buf, .len = len, .why = why, .whylen = whylen, .db = db };
	unsigned char digest[32];

	buf[0] = '\0';
	crypto_generichash_init(&l.h, NULL, 0, sizeof(digest));
	/* Cost: the cameras in the order they were added (SDP order for vigild run), at most the cap + 1. */
	if (mgmt_camera_list(db, MGMT_CAMERAS_BY_ADDED, CAPTURE_CAMERAS_MAX + 1, add_camera_line, &l) < 0)
		return -EIO;
	crypto_generichash_final(&l.h, digest, sizeof(digest));
	sodium_bin2hex(sig, 65, digest, sizeof(digest));
	return l.n;
}

static void audit_capture(struct mgmt_db *db, const char *action, int64_t deployment, const char *detail)
{
	char object[64];

	snprintf(object, sizeof(object), "deployment/%" PRId64, deployment);
	mgmt_audit_append(db, &vigild_actor, action, object, detail, NULL);
}

/* Note a child's end: audited, with back-off when it was not asked to stop. */
static void reaped(struct mgmt_capture *cap, struct mgmt_db *db, int status, bool asked, int64_t now_s)
{
	char detail[160];

	if (WIFEXITED(status))
		snprintf(detail, sizeof(detail), "{\"pid\":%d,\"exit\":%d,\"asked\":%s}", (int)cap->pid, WEXITSTATUS(status),
			 asked ? "true" : "false");
	else
		snprintf(detail, sizeof(detail), "{\"pid\":%d,\"signal\":%d,\"asked\":%s}", (int)cap->pid,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0, asked ? "true" : "false");
	audit_capture(db, "capture.exit", cap->deployment, detail);
	if (!asked) {
		cap->backoff_s = cap->backoff_s ? (cap->backoff_s * 2 > CAPTURE_BACKOFF_MAX_S ? CAPTURE_BACKOFF_MAX_S
											  : cap->backoff_s * 2)
						: 1;
		cap->next_try_s = now_s + cap->backoff_s;
		cap->failures++;
		VG_LOG(MGMT, WARN, "capture for deployment %" PRId64 " ended on its own (%s); again in %u s", cap->deployment,
		       detail, cap->backoff_s);
	}
	cap->pid = 0;
}

void mgmt_capture_stop(struct mgmt_capture *cap, struct mgmt_db *db, const char *why)
{
	char detail[320];
	int status = 0;

	if (!cap->pid)
		return;
	snprintf(detail, sizeof(detail), "{\"pid\":%d,\"why\":\"%.200s\"}", (int)cap->pid, why);
	audit_capture(db, "capture.stop", cap->deployment, detail);
	kill(cap->pid, SIGTERM); /* vigild run drains its queues, writes its report and exits */
	for (unsigned waited = 0;; waited += 50) {
		pid_t r = waitpid(cap->pid, &status, WNOHANG);
		if (r == cap->pid || (r < 0 && errno == ECHILD))
			break;
		if (waited >= CAPTURE_STOP_WAIT_MS) {
			kill(cap->pid, SIGKILL);
			waitpid(cap->pid, &status, 0);
			break;
		}
		usleep(50 * 1000);
	}
	reaped(cap, db, status, true, (int64_t)time(NULL));
	cap->deployment = 0;
}

/* Start the child for DEPLOYMENT. Returns 0 or -errno (the reason in cap->why). */
static int capture_start(struct mgmt_capture *cap, struct mgmt_db *db, const struct mgmt_daemon_conf *conf,
			 int64_t deployment, const char *lines, const char *sig, const char *watchlists, int64_t now_s)
{
	char exe[512], report[512], runs[300], port[16], dep[24], detail[900], metrics[320];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int memfd, rc;
	pid_t pid;

	if (n <= 0)
		return -errno;
	exe[n] = '\0';
	snprintf(runs, sizeof(runs), "%s/runs", conf->state_dir);
	if (mkdir(runs, 0700) < 0 && errno != EEXIST)
		return -errno;
	snprintf(report, sizeof(report), "%s/deployment-%" PRId64 "-%" PRId64 ".json", runs, deployment, now_s);
	snprintf(metrics, sizeof(metrics), "%s/metrics.prom", runs); /* shown by vigild's /metrics */
	snprintf(port, sizeof(port), "%" PRId64, conf->capture_rtsp_port);
	snprintf(dep, sizeof(dep), "%" PRId64, deployment);
	memfd = memfd_create("vigil-cameras", MFD_CLOEXEC);
	if (memfd < 0)
		return -errno;
	size_t len = strlen(lines);
	if (write(memfd, lines, len) != (ssize_t)len) {
		rc = -EIO;
		goto out_close;
	}
	char batch[24], fusion[24];
	snprintf(batch, sizeof(batch), "%" PRId64, conf->capture_batch); /* before the fork, like all of argv */
	snprintf(fusion, sizeof(fusion), "%" PRId64, conf->track_fusion);
	pid_t parent = getpid();
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out_close;
	}
	if (pid == 0) {
		/* The child: fd 3 is the cameras, nothing else of vigild's is inherited, signals as new. */
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* If vigild dies, so does its capture: a restarted vigild must not find an orphan holding
		 * the evidence store and matching outside its control. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127); /* it died before the line above */
		if (dup2(memfd, 3) < 0)
			_exit(127);
		close_range(4, ~0u, 0);
		const char *argv[] = { "vigild", "run", "--iface", conf->capture_iface, "--rtsp-file", "/proc/self/fd/3",
				       "--rtsp-port", port, "--models", conf->models_dir, "--watchlist", watchlists,
				       "--state-dir", conf->state_dir, "--deployment", dep, "--report", report,
				       "--metrics-file", metrics, "--gpu", mgmt_capture_nets[conf->capture_nets],
				       "--decode", mgmt_capture_decode[conf->capture_decode],
				       "--track-fusion", fusion, conf->capture_batch ? "--batch" : NULL, batch, NULL };
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	cap->pid = pid;
	cap->deployment = deployment;
	cap->started_s = now_s;
	cap->starts++;
	snprintf(cap->cameras_sig, sizeof(cap->cameras_sig), "%s", sig);
	snprintf(cap->report, sizeof(cap->report), "%s", report);
	cap->why[0] = '\0';
	snprintf(detail, sizeof(detail), "{\"pid\":%d,\"iface\":\"%.32s\",\"report\":\"%.500s\"}", (int)pid,
		 conf->capture_iface, report);
	audit_capture(db, "capture.start", deployment, detail);
	VG_LOG(MGMT, NOTICE, "capture for deployment %" PRId64 " started (pid %d)", deployment, (int)pid);
	rc = 0;
out_close:
	close(memfd); /* the child holds its own copy; the memfd's pages go with the last one */
	return rc;
}

void mgmt_capture_tick(struct mgmt_capture *cap, struct mgmt_db *db, const struct mgmt_daemon_conf *conf, int64_t now_s)
{
	static char lines[CAPTURE_CAMERAS_MAX * 1600 + 1];
	char sig[65] = "", watchlists[4096], why[192] = "";
	int status, n_cams = 0, n_wl = 0;
	int64_t want;

	if (cap->pid && waitpid(cap->pid, &status, WNOHANG) == cap->pid)
		reaped(cap, db, status, false, now_s);
	want = mgmt_deployment_matching_now(db, now_s);
	if (want) {
		n_wl = watchlist_files(db, want, watchlists, sizeof(watchlists));
		n_cams = camera_lines(db, lines, sizeof(lines), sig, why, sizeof(why));
	}
	if (cap->pid) {
		const char *stop = !want || want != cap->deployment ? "its deployment is no longer active"
				   : n_cams <= 0				  ? "no cameras"
				   : n_wl <= 0				  ? "its watchlists are gone"
				   : strcmp(sig, cap->cameras_sig) != 0	  ? "the cameras changed"
									  : NULL;
		if (stop)
			mgmt_capture_stop(cap, db, stop);
	}
	if (cap->pid || !want) {
		if (!want)
			snprintf(cap->why, sizeof(cap->why), "no active deployment");
		goto out_scrub;
	}
	if (!conf->capture_iface[0])
		snprintf(cap->why, sizeof(cap->why), "vigild.capture_iface is empty: live capture is off");
	else if (n_cams <= 0)
		snprintf(cap->why, sizeof(cap->why), "no cameras (vigilctl camera add)");
	else if (n_wl <= 0)
		snprintf(cap->why, sizeof(cap->why), "deployment %" PRId64 " has no watchlist in vigild's custody (vigilctl watchlist add)", want);
	else if (now_s >= cap->next_try_s) {
		int rc = capture_start(cap, db, conf, want, lines, sig, watchlists, now_s);
		if (rc < 0) {
			snprintf(cap->why, sizeof(cap->why), "cannot start the capture: %s", vg_strerror(rc));
			cap->next_try_s = now_s + CAPTURE_BACKOFF_MAX_S;
		} else if (why[0]) {
			snprintf(cap->why, sizeof(cap->why), "%s", why);
		}
	}
out_scrub:
	sodium_memzero(lines, sizeof(lines));
}

int mgmt_capture_purge_hook(void *arg, int64_t deployment_id, const char *watchlist_id)
{
	struct mgmt_capture_purge *cp = arg;

	/* Matching stops before the watchlist goes: no alert is raised from a purged watchlist. */
	if (cp->cap->pid && cp->cap->deployment == deployment_id)
		mgmt_capture_stop(cp->cap, cp->db, "its deployment ended");
	return mgmt_watchlist_purge_hook(cp->db, deployment_id, watchlist_id);
}

void mgmt_capture_status(void *arg, struct mgmt_capture_status *out)
{
	const struct mgmt_capture *c = arg;

	*out = (struct mgmt_capture_status){
		.running = c->pid != 0,
		.pid = (int)c->pid,
		.deployment = c->deployment,
		.since_s = c->started_s,
		.starts = c->starts,
		.failures = c->failures,
	};
	snprintf(out->note, sizeof(out->note), "%s", c->why);
}
