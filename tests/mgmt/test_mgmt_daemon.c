/*
 * vigild's management loop as a process: it serves the control socket and /metrics, is not
 * dumpable and has dropped capabilities, applies a SIGHUP reload all or nothing (a uid added to
 * the people map is recognised afterwards; a reload touching a restart-only setting changes
 * nothing; a person the file removes loses their roles even when a stored vigild.people outranks
 * the file), stops cleanly on SIGTERM (socket removed, exit 0), keeps its state across a restart,
 * and is alone on its state directory (a second vigild exits with one line, the first serves on).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vg_test.h"
#include "mgmt_ctl.h"
#include "mgmt_daemon.h"
#include "test_mgmt_common.h"
#include "vg_conf.h"

static char conf_path[300], sock_path[300], state_dir[300];
static int metrics_port;

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	getsockname(fd, (struct sockaddr *)&sa, &len);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static void write_conf(const char *people, const char *socket_override)
{
	FILE *f = fopen(conf_path, "w");

	fprintf(f, "# test config\nvigild.state_dir = \"%s\"\nvigild.socket = \"%s\"\nvigild.people = \"%s\"\n"
		   "vigild.metrics_listen = \"127.0.0.1:%d\"\nvigild.log = \"err\"\n",
		state_dir, socket_override ? socket_override : sock_path, people, metrics_port);
	fclose(f);
}

static pid_t start_daemon(void)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct mgmt_daemon_conf conf;
		const struct vg_conf_table *tables[] = { &mgmt_daemon_conf_table };
		void *objs[] = { &conf };
		struct vg_conf_set set = { tables, objs, 1 };
		char err[512];

		if (vg_conf_set_defaults(&set, err, sizeof(err)) < 0 || vg_conf_load_file(&set, conf_path, false, err, sizeof(err)) < 0) {
			fprintf(stderr, "daemon config: %s\n", err);
			_exit(2);
		}
		int rc = mgmt_daemon_run(&conf, conf_path, err, sizeof(err));
		if (rc < 0)
			fprintf(stderr, "daemon: %s\n", err);
		_exit(rc == 0 ? 0 : 1);
	}
	for (int i = 0; i < 100 && access(sock_path, F_OK) != 0; i++)
		usleep(50 * 1000);
	return pid;
}

/* Call VERB as UID (0: this process) and return the parsed reply (caller decrefs), or NULL. */
static json_t *call_as(uid_t uid, const char *request)
{
	char err[256], *reply = NULL, buf[65536];
	int pipefd[2];

	if (uid == 0) {
		if (mgmt_ctl_call(sock_path, request, &reply, err, sizeof(err)) < 0)
			return NULL;
		json_t *j = json_loads(reply, 0, NULL);
		free(reply);
		return j;
	}
	if (pipe(pipefd) < 0)
		return NULL;
	pid_t pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		if (setgid(uid) < 0 || setuid(uid) < 0)
			_exit(3);
		if (mgmt_ctl_call(sock_path, request, &reply, err, sizeof(err)) == 0)
			dprintf(pipefd[1], "%s", reply);
		_exit(0);
	}
	close(pipefd[1]);
	ssize_t n, have = 0;
	while ((n = read(pipefd[0], buf + have, sizeof(buf) - 1 - (size_t)have)) > 0)
		have += n;
	buf[have] = '\0';
	close(pipefd[0]);
	waitpid(pid, NULL, 0);
	return json_loads(buf, 0, NULL);
}

static const char *str(json_t *j, const char *key)
{
	const char *s = json_string_value(json_object_get(j, key));
	return s ? s : "";
}

static int ok(json_t *j)
{
	int r = j && json_is_true(json_object_get(j, "ok"));
	json_decref(j);
	return r;
}

static int http_get(const char *path, char *out, size_t len)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)metrics_port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t have = 0;
	ssize_t n;

	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	dprintf(fd, "GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n", path);
	while (have + 1 < len && (n = read(fd, out + have, len - 1 - have)) > 0)
		have += (size_t)n;
	out[have] = '\0';
	close(fd);
	return 0;
}

/*
 * A second vigild on the same state directory: its exit status, and its one line of stderr in
 * LINE. Bounded: 10 s.
 */
static int second_daemon(char *line, size_t len)
{
	int pipefd[2], status = -1;
	ssize_t n, have = 0;

	if (pipe(pipefd) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		struct mgmt_daemon_conf conf;
		const struct vg_conf_table *tables[] = { &mgmt_daemon_conf_table };
		void *objs[] = { &conf };
		struct vg_conf_set set = { tables, objs, 1 };
		char err[512];

		if (vg_conf_set_defaults(&set, err, sizeof(err)) < 0 ||
		    vg_conf_load_file(&set, conf_path, false, err, sizeof(err)) < 0)
			_exit(2);
		if (mgmt_daemon_run(&conf, conf_path, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			_exit(1);
		}
		_exit(0);
	}
	close(pipefd[1]);
	for (int i = 0; i < 200 && waitpid(pid, &status, WNOHANG) != pid; i++)
		usleep(50 * 1000);
	if (!WIFEXITED(status)) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	while (have + 1 < (ssize_t)len && (n = read(pipefd[0], line + have, len - 1 - (size_t)have)) > 0)
		have += n;
	line[have] = '\0';
	close(pipefd[0]);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int stop(pid_t pid)
{
	int status = -1;

	kill(pid, SIGTERM);
	for (int i = 0; i < 100; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

int main(void)
{
	char http[65536];
	json_t *j;

	test_db_fresh();
	chmod(test_dir, 0755);
	snprintf(conf_path, sizeof(conf_path), "%s/vigild.conf", test_dir);
	snprintf(sock_path, sizeof(sock_path), "%s/vigild.sock", test_dir);
	snprintf(state_dir, sizeof(state_dir), "%s/state", test_dir);
	metrics_port = free_port();
	write_conf("0:root:admin+operator", NULL);

	char seal[65], create[640];
	CHECK_EQ_INT(test_wl_register_in(state_dir, 1, seal), 0);
	pid_t pid = start_daemon();
	CHECK(access(sock_path, F_OK) == 0);
	j = call_as(0, "{\"verb\":\"status\"}");
	CHECK(j != NULL);
	if (j) {
		json_t *r = json_object_get(j, "result");
		CHECK(strcmp(str(r, "you"), "root") == 0);
		CHECK(json_is_false(json_object_get(r, "dumpable")));
		CHECK(strcmp(str(r, "capabilities"), "full") != 0);
		json_decref(j);
	}
	/* uid 2003 is no one yet. */
	CHECK(!ok(call_as(2003, "{\"verb\":\"status\"}")));

	/* SIGHUP with carol added: she is recognised. */
	write_conf("0:root:admin+operator,2003:supt.carol:authoriser", NULL);
	kill(pid, SIGHUP);
	int carol_ok = 0;
	for (int i = 0; i < 40 && !carol_ok; i++) {
		usleep(50 * 1000);
		carol_ok = ok(call_as(2003, "{\"verb\":\"status\"}"));
	}
	CHECK(carol_ok);
	/* A reload that changes a restart-only setting is refused whole: carol stays, the socket stays. */
	write_conf("0:root:admin+operator", "/tmp/elsewhere.sock");
	kill(pid, SIGHUP);
	usleep(300 * 1000);
	CHECK(ok(call_as(2003, "{\"verb\":\"status\"}")));

	/* A deployment, and the metrics that count it. */
	snprintf(create, sizeof(create),
		 "{\"verb\":\"deployment.create\",\"args\":{\"name\":\"Van 3\",\"use_case\":\"crime-hotspot\","
		 "\"location\":\"High St\",\"start\":%lld,\"end\":%lld,\"justification\":\"Robberies\","
		 "\"watchlists\":[{\"id\":\"1\",\"seal\":\"%s\"}]}}",
		 (long long)time(NULL), (long long)time(NULL) + 8 * 3600, seal);
	CHECK(ok(call_as(0, create)));
	usleep(1200 * 1000); /* one tick for the gauges */
	CHECK_EQ_INT(http_get("/metrics", http, sizeof(http)), 0);
	CHECK(strstr(http, "HTTP/1.0 200") != NULL || strstr(http, "HTTP/1.1 200") != NULL);
	CHECK(strstr(http, "# TYPE vigil_deployments_active gauge\nvigil_deployments_active 0\n") != NULL);
	CHECK(strstr(http, "vigil_ctl_requests_total ") != NULL);
	CHECK(strstr(http, "vigil_audit_entries 0\n") == NULL); /* entries were written */
	CHECK_EQ_INT(http_get("/health", http, sizeof(http)), 0);
	CHECK(strstr(http, "\r\n\r\nok\n") != NULL);
	CHECK_EQ_INT(http_get("/nope", http, sizeof(http)), 0);
	CHECK(strstr(http, " 404 ") != NULL);

	/* SIGTERM: exit 0, socket gone. */
	CHECK_EQ_INT(stop(pid), 0);
	CHECK(access(sock_path, F_OK) != 0);

	/* Restart (with the file as it was before the refused edit): the deployment is still there. */
	write_conf("0:root:admin+operator,2003:supt.carol:authoriser", NULL);
	pid = start_daemon();
	j = call_as(2003, "{\"verb\":\"deployment.show\",\"args\":{\"id\":1}}");
	CHECK(j && strcmp(str(json_object_get(j, "result"), "name"), "Van 3") == 0);
	json_decref(j);

	/* A second vigild on the same state directory: one line, exit 1, the first one still serves. */
	char line[512], want[400];
	CHECK_EQ_INT(second_daemon(line, sizeof(line)), 1);
	snprintf(want, sizeof(want), "another vigild serves %s (pid %d)\n", state_dir, (int)pid);
	CHECK(strcmp(line, want) == 0);
	if (strcmp(line, want) != 0)
		fprintf(stderr, "second vigild said: %s", line);
	CHECK(access(sock_path, F_OK) == 0);
	CHECK(ok(call_as(0, "{\"verb\":\"status\"}")));

	/* Revocation over a stored map: config set keeps carol, the file then removes her, a reload
	 * takes her role away, and a restart keeps it taken (the stored map was rewritten). */
	CHECK(ok(call_as(0, "{\"verb\":\"config.set\",\"args\":{\"name\":\"vigild.people\","
			    "\"value\":\"0:root:admin+operator,2003:supt.carol:authoriser\"}}")));
	write_conf("0:root:admin+operator", NULL);
	kill(pid, SIGHUP);
	int carol_gone = 0;
	for (int i = 0; i < 100 && !carol_gone; i++) {
		carol_gone = !ok(call_as(2003, "{\"verb\":\"status\"}"));
		if (!carol_gone)
			usleep(50 * 1000); /* until the reload is seen: 5 s at most */
	}
	CHECK(carol_gone);
	CHECK_EQ_INT(stop(pid), 0);
	pid = start_daemon();
	CHECK(ok(call_as(0, "{\"verb\":\"status\"}")));
	CHECK(!ok(call_as(2003, "{\"verb\":\"status\"}")));
	CHECK_EQ_INT(stop(pid), 0);

	/* The audit log tells it all and is intact. */
	struct mgmt_db *db = NULL;
	struct mgmt_audit_report r;
	char err[256], db_path[320];
	snprintf(db_path, sizeof(db_path), "%s/vigil.db", state_dir);
	CHECK_EQ_INT(mgmt_db_open(&db, db_path, err, sizeof(err)), 0);
	CHECK_EQ_INT(mgmt_audit_verify(db, &r), 0);
	/* Before the first vigild: watchlist 1 added to custody.
	 * First vigild: start, refused (uid 2003), reload applied, reload refused, create, stop.
	 * Second: start, config.set by root, config.set by vigild (the revocation), reload applied,
	 * refused (carol, the first refusal of her uid there), stop. Third: start, refused, stop. */
	CHECK_EQ_INT(r.entries, 16);
	mgmt_db_close(&db);
	test_db_cleanup();
	return vg_test_exit();
}
