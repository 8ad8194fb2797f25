/*
 * mgmt control socket: the people map's parser; requests refused by role (and audited), malformed,
 * unknown, oversized and duplicate-keyed requests answered with one-line errors; and over a real
 * socket, callers identified by SO_PEERCRED: children switch to other uids and are treated as the
 * people those uids map to, or refused when no one is mapped.
 */
#include <errno.h>
#include <time.h>
#include <jansson.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vg_test.h"
#include "mgmt_ctl.h"
#include "test_mgmt_common.h"

static const char *const PEOPLE = "1001:admin.smith:admin,2001:sgt.alice:operator+authoriser,"
				  "2003:supt.carol:authoriser,2004:auditor.dave:auditor";

/* ok / errno name of a reply, for the checks below. */
static int reply_ok(const char *reply, const char *want_errno)
{
	json_t *j = json_loads(reply, 0, NULL);
	int ok = 0;

	if (!j)
		return 0;
	if (!want_errno)
		ok = json_is_true(json_object_get(j, "ok"));
	else
	{
		const char *e = json_string_value(json_object_get(j, "errno"));
		const char *msg = json_string_value(json_object_get(j, "error"));

		ok = json_is_false(json_object_get(j, "ok")) && e && strcmp(e, want_errno) == 0 && msg && *msg &&
		     !strchr(msg, '\n');
	}
	json_decref(j);
	return ok;
}

static int handle(struct mgmt_ctl *ctl, const struct mgmt_actor *who, const char *req, const char *want_errno)
{
	char *reply = NULL;
	int rc = mgmt_ctl_handle(ctl, who, req, strlen(req), &reply);
	int ok = reply && reply_ok(reply, want_errno);

	if (!ok)
		fprintf(stderr, "request %.80s -> %s (rc %d)\n", req, reply ? reply : "(null)", rc);
	free(reply);
	return ok;
}

/* In a child: become UID, make each call, write "<reply>\n" per call to FD, exit. */
static void child_calls(const char *sock, uid_t uid, const char *const *reqs, int n, int fd)
{
	char err[256], *reply;

	if (setgid(uid) < 0 || setuid(uid) < 0)
		_exit(3);
	for (int i = 0; i < n; i++) {
		if (mgmt_ctl_call(sock, reqs[i], &reply, err, sizeof(err)) < 0) {
			dprintf(fd, "{\"client_error\":\"%s\"}\n", err);
			continue;
		}
		dprintf(fd, "%s\n", reply);
		free(reply);
	}
	_exit(0);
}

static int run_child(struct mgmt_ctl *ctl, const char *sock, uid_t uid, const char *const *reqs, int n, char *out,
		     size_t out_len)
{
	int pipefd[2], status;
	size_t have = 0;
	ssize_t r;

	if (pipe(pipefd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		child_calls(sock, uid, reqs, n, pipefd[1]);
	}
	close(pipefd[1]);
	/* Serve until the child has its N replies (a bounded wait: 10 s of passes at most). */
	int answered = 0;
	for (int pass = 0; pass < 100 && answered < n; pass++) {
		int got = mgmt_ctl_serve(ctl, 100);
		CHECK(got >= 0);
		answered += got > 0 ? got : 0;
	}
	CHECK_EQ_INT(answered, n);
	while (have + 1 < out_len && (r = read(pipefd[0], out + have, out_len - 1 - have)) > 0)
		have += (size_t)r;
	out[have] = '\0';
	close(pipefd[0]);
	waitpid(pid, &status, 0);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int main(void)
{
	struct mgmt_people *people = NULL;
	struct mgmt_actor a;
	struct mgmt_db *db = NULL;
	struct mgmt_ctl *ctl = NULL;
	struct mgmt_audit_report r;
	char err[256];

	/* ---- the people map ---- */
	CHECK_EQ_INT(mgmt_people_parse(&people, "", err, sizeof(err)), -EINVAL);
	static const char *const bad_maps[] = {
		"1001:bob", "1001:bob:", "1001:bob:wizard", "1001:bob:admin+", "x:bob:admin", ":bob:admin",
		"1001::admin", "99999999999:bob:admin", "1001:b ob:admin", "1001:bob:admin,1001:eve:auditor",
		"1001:bob:admin,,", "1001:a234567890123456789012345678901234567890123456789012345678901234:admin",
	};
	for (size_t i = 0; i < sizeof(bad_maps) / sizeof(bad_maps[0]); i++) {
		err[0] = '\0';
		CHECK_EQ_INT(mgmt_people_parse(&people, bad_maps[i], err, sizeof(err)), -EINVAL);
		CHECK(err[0] && !strchr(err, '\n'));
		CHECK(people == NULL);
	}
	CHECK_EQ_INT(mgmt_people_parse(&people, PEOPLE, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_people_lookup(people, 2001, &a), 0);
	CHECK(strcmp(a.name, "sgt.alice") == 0 && a.roles == (MGMT_ROLE_OPERATOR | MGMT_ROLE_AUTHORISER));
	CHECK_EQ_INT(mgmt_people_lookup(people, 0, &a), -ENOENT);

	/* ---- requests without a socket ---- */
	test_db_fresh();
	CHECK_EQ_INT(mgmt_db_open(&db, test_db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, db, people, NULL, err, sizeof(err)), 0);
	struct mgmt_actor alice, dave;
	mgmt_people_lookup(people, 2001, &alice);
	mgmt_people_lookup(people, 2004, &dave);
	/* The deployment names a watchlist vigild holds, by its seal (invariant 2). */
	char seal[65], create[1024];
	CHECK_EQ_INT(test_wl_register(db, &alice, 1, 2, seal), 0);
	int64_t now = (int64_t)time(NULL);
	snprintf(create, sizeof(create),
		 "{\"verb\":\"deployment.create\",\"args\":{\"name\":\"Stadium\",\"use_case\":\"crime-hotspot\","
		 "\"location\":\"Gate 4\",\"start\":%lld,\"end\":%lld,\"justification\":\"Disorder at last 3 matches\","
		 "\"watchlists\":[{\"id\":\"1\",\"seal\":\"%s\"}]}}",
		 (long long)now, (long long)now + 8 * 3600, seal);
	/* Named by id alone, or by a seal that is not its own: refused. */
	CHECK(handle(ctl, &alice,
		     "{\"verb\":\"deployment.create\",\"args\":{\"name\":\"S\",\"use_case\":\"crime-hotspot\","
		     "\"location\":\"G\",\"start\":1,\"end\":2,\"justification\":\"J\",\"watchlists\":[\"1\"]}}",
		     "EINVAL"));
	CHECK(handle(ctl, &alice, create, NULL));
	CHECK(handle(ctl, &dave, create, "EPERM"));           /* auditors do not request deployments */
	CHECK(handle(ctl, &alice, "{\"verb\":\"status\"}", NULL));
	CHECK(handle(ctl, &alice, "{\"verb\":", "EINVAL"));   /* malformed */
	CHECK(handle(ctl, &alice, "[1,2]", "EINVAL"));        /* not an object */
	CHECK(handle(ctl, &alice, "{\"verb\":7}", "EINVAL"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"status\",\"args\":[]}", "EINVAL"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"rm -rf\"}", "EOPNOTSUPP"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.show\",\"args\":{\"id\":1,\"id\":2}}", "EINVAL"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.show\",\"args\":{\"id\":\"1\"}}", "EINVAL"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.show\",\"args\":{\"id\":1}}", NULL));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.show\",\"args\":{\"id\":99}}", "ENOENT"));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.authorise\",\"args\":{\"id\":1,\"reasons\":\"ok\"}}", "EPERM"));
	CHECK(handle(ctl, &dave, "{\"verb\":\"audit.verify\"}", NULL));
	CHECK(handle(ctl, &alice, "{\"verb\":\"deployment.list\"}", NULL));
	char *big = malloc(MGMT_CTL_REQUEST_MAX + 10), *reply = NULL;
	memset(big, ' ', MGMT_CTL_REQUEST_MAX + 9);
	big[MGMT_CTL_REQUEST_MAX + 9] = '\0';
	CHECK_EQ_INT(mgmt_ctl_handle(ctl, &alice, big, strlen(big), &reply), -E2BIG);
	CHECK(reply && reply_ok(reply, "E2BIG"));
	free(reply);
	mgmt_ctl_close(&ctl);

	/* ---- over the socket, identified by SO_PEERCRED ---- */
	char sock[300], out[16384];
	snprintf(sock, sizeof(sock), "%s/ctl.sock", test_dir);
	chmod(test_dir, 0755); /* the children run as other uids */
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, db, people, sock, err, sizeof(err)), 0);
	static const char *const carol_reqs[] = {
		"{\"verb\":\"status\"}",
		"{\"verb\":\"deployment.authorise\",\"args\":{\"id\":1,\"reasons\":\"Proportionate\"}}",
	};
	CHECK_EQ_INT(run_child(ctl, sock, 2003, carol_reqs, 2, out, sizeof(out)), 0);
	char *second = strchr(out, '\n');
	CHECK(second != NULL);
	if (second) {
		*second++ = '\0';
		CHECK(strstr(out, "\"you\":\"supt.carol\"") != NULL);
		CHECK(reply_ok(out, NULL));
		CHECK(strstr(second, "\"state\":\"authorised\"") != NULL);
	}
	/* A uid no one mapped: refused, and the refusal names the uid in the audit log. */
	static const char *const stranger_reqs[] = { "{\"verb\":\"status\"}" };
	CHECK_EQ_INT(run_child(ctl, sock, 4242, stranger_reqs, 1, out, sizeof(out)), 0);
	CHECK(reply_ok(out, "EPERM"));
	/* An oversized request over the wire: one error line, connection dropped, server fine. */
	static char huge[MGMT_CTL_REQUEST_MAX + 100];
	memset(huge, 'x', sizeof(huge) - 1);
	const char *huge_reqs[] = { huge };
	CHECK_EQ_INT(run_child(ctl, sock, 2001, huge_reqs, 1, out, sizeof(out)), 0);
	CHECK(reply_ok(out, "E2BIG"));
	CHECK_EQ_INT(run_child(ctl, sock, 2001, carol_reqs, 1, out, sizeof(out)), 0);
	CHECK(strstr(out, "\"you\":\"sgt.alice\"") != NULL);

	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	/* watchlist added; create, auditor's refused create, alice's refused authorise, carol's authorise,
	 * stranger refused */
	CHECK_EQ_INT(r.entries, 6);
	struct mgmt_actor root = { "root", 0, MGMT_ROLE_AUDITOR };

	mgmt_ctl_close(&ctl);
	CHECK(access(sock, F_OK) != 0); /* the socket file is gone */
	CHECK_EQ_INT(mgmt_ctl_open(&ctl, db, people, NULL, err, sizeof(err)), 0);
	char *list = NULL;
	mgmt_ctl_handle(ctl, &root, "{\"verb\":\"audit.list\"}", 21, &list);
	CHECK(list && strstr(list, "\"actor\":\"uid:4242\",\"uid\":4242,\"action\":\"request.refused\"") != NULL);
	free(list);
	mgmt_ctl_close(&ctl);
	free(big);
	mgmt_db_close(&db);
	mgmt_people_free(&people);
	test_db_cleanup();
	return vg_test_exit();
}
