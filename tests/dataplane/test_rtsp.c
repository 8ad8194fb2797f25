/*
 * The RTSP client against gst-rtsp-server (rtsp_server.c): DESCRIBE/SETUP/PLAY and RTP arriving
 * on the client port, Basic and Digest authentication (and refused credentials that never show
 * in the error), keep-alive, TEARDOWN, a server restart answered by reconnecting with back-off,
 * and a server that answers garbage.
 *   test_rtsp RTSP_SERVER_BINARY
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dp.h"
#include "vg_clock.h"
#include "vg_test.h"

static const char *server_bin;
static int client_port; /* RTP lands here: one of our own, beside other tests */
static const char *srv_user = "officer", *srv_pw = "s3cret-pw"; /* what the server accepts */

static pid_t server_start(int port, const char *mode)
{
	char p[16];
	pid_t pid;

	snprintf(p, sizeof(p), "%d", port);
	pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", 1);
		dup2(null, 1);
		execl(server_bin, server_bin, p, mode, srv_user, srv_pw, (char *)NULL);
		_exit(127);
	}
	/* Wait until it accepts connections (at most 5 s). */
	for (int i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001) };
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return pid;
		usleep(50000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void server_stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static int udp_bind(int port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001) };

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* RTP packets of payload type 96 that arrive on FD within MS. */
static int count_rtp(int fd, int ms)
{
	uint64_t end = vg_clock_ns() / VG_NS_PER_MS + (uint64_t)ms;
	int n = 0;

	for (uint64_t now; (now = vg_clock_ns() / VG_NS_PER_MS) < end && n < 20;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint8_t b[2048];
		struct dp_rtp_pkt pkt;
		if (poll(&p, 1, (int)(end - now)) <= 0)
			break;
		ssize_t got = recv(fd, b, sizeof(b), 0);
		if (got > 0 && dp_rtp_parse(b, (size_t)got, &pkt) == 0 && pkt.pt == 96)
			n++;
	}
	return n;
}

/* A session as USER/PW given apart, or (USERINFO, "user:password@") inside the URL. */
static void test_session_in(int port, const char *mode, const char *userinfo, const char *user, const char *pw,
			    int want)
{
	char url[256], err[256] = "";
	struct dp_rtsp *r = NULL;
	int udp = udp_bind(client_port);

	CHECK(udp >= 0);
	snprintf(url, sizeof(url), "rtsp://%s127.0.0.1:%d/cam", userinfo, port);
	struct dp_rtsp_conf conf = { .url = url, .user = user, .password = pw, .client_port = (uint16_t)client_port, .timeout_ms = 5000 };
	int rc = dp_rtsp_open(&r, &conf, err, sizeof(err));
	if (rc != want)
		fprintf(stderr, "%s: %s\n", mode, err);
	CHECK_EQ_INT(rc, want);
	CHECK(strstr(err, "s3cret") == NULL && strstr(err, "wrong") == NULL);
	if (rc == 0) {
		const struct dp_sdp *sdp = dp_rtsp_sdp(r);
		CHECK_EQ_INT(sdp->n_media, 1);
		CHECK_EQ_INT(sdp->media[0].codec, DP_CODEC_H264);
		CHECK_EQ_INT(sdp->media[0].port, client_port);
		CHECK(count_rtp(udp, 5000) >= 5);
		CHECK_EQ_INT(dp_rtsp_keepalive(r, 0), 0);                     /* not due yet */
		CHECK_EQ_INT(dp_rtsp_keepalive(r, vg_clock_ns() / VG_NS_PER_MS + 3600000), 0); /* due: answered */
		dp_rtsp_close(&r);
		CHECK(r == NULL);
	}
	close(udp);
}

static void test_session(int port, const char *mode, const char *user, const char *pw, int want)
{
	test_session_in(port, mode, "", user, pw, want);
}

static void *garbage_server(void *arg)
{
	int lfd = *(int *)arg;
	int fd = accept(lfd, NULL, NULL);
	char buf[1024];

	if (fd >= 0) {
		recv(fd, buf, sizeof(buf), 0);
		static const char junk[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
		send(fd, junk, sizeof(junk) - 1, MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	char url[128], err[256];
	struct dp_rtsp *r = NULL;
	int port = 18554 + (getpid() % 1000);

	if (argc < 2)
		return 1;
	server_bin = argv[1];
	client_port = 40000 + (getpid() % 4000) * 2;
	signal(SIGPIPE, SIG_IGN);

	pid_t pid = server_start(port, "none");
	if (pid < 0) {
		fprintf(stderr, "rtsp_server did not start\n");
		return 1;
	}
	test_session(port, "none", NULL, NULL, 0);

	/* The camera restarts: the client fails fast, then reconnects with back-off. */
	server_stop(pid);
	snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/cam", port);
	struct dp_rtsp_conf conf = { .url = url, .client_port = (uint16_t)client_port, .timeout_ms = 3000 };
	CHECK_EQ_INT(dp_rtsp_open(&r, &conf, err, sizeof(err)), -ECONNREFUSED);
	pid = server_start(port, "none");
	CHECK(pid > 0);
	unsigned attempt = 0, waited = 0;
	int rc;
	while ((rc = dp_rtsp_open(&r, &conf, err, sizeof(err))) < 0 && attempt < 6) {
		unsigned ms = dp_rtsp_backoff_ms(attempt++);
		usleep(ms * 1000);
		waited += ms;
	}
	CHECK_EQ_INT(rc, 0);
	dp_rtsp_close(&r);
	CHECK_EQ_INT(dp_rtsp_backoff_ms(0), 250);
	CHECK_EQ_INT(dp_rtsp_backoff_ms(3), 2000);
	CHECK_EQ_INT(dp_rtsp_backoff_ms(40), 30000);
	server_stop(pid);

	pid = server_start(port, "basic");
	CHECK(pid > 0);
	test_session(port, "basic", "officer", "s3cret-pw", 0);
	test_session(port, "basic bad password", "officer", "wrong-pw", -EACCES);
	test_session(port, "basic no credentials", NULL, NULL, -EACCES);
	server_stop(pid);
	pid = server_start(port, "digest");
	CHECK(pid > 0);
	test_session(port, "digest", "officer", "s3cret-pw", 0);
	test_session(port, "digest bad password", "officer", "wrong-pw", -EACCES);
	server_stop(pid);

	/* A user name and password with '@', ':', '/', '%', a space and unicode, percent-encoded in
	 * the URL, reach the server exactly decoded, by Basic and by Digest; given apart (as vigild
	 * passes a camera's unsealed credentials) they are sent as they are. */
	static const char hostile_user[] = "ops@site:7", hostile_pw[] = "p@ss:w/rd% x\xe2\x82\xac";
	static const char hostile_info[] = "ops%40site%3A7:p%40ss:w%2Frd%25%20x%E2%82%AC@";
	srv_user = hostile_user;
	srv_pw = hostile_pw;
	for (int m = 0; m < 2; m++) {
		pid = server_start(port, m ? "digest" : "basic");
		CHECK(pid > 0);
		test_session_in(port, m ? "digest, hostile, in the URL" : "basic, hostile, in the URL", hostile_info, NULL,
				NULL, 0);
		test_session(port, m ? "digest, hostile, apart" : "basic, hostile, apart", hostile_user, hostile_pw, 0);
		test_session_in(port, "hostile, not decoded", "ops%40site%3A7:p%40ss:w%2Frd%25%20x@", NULL, NULL, -EACCES);
		server_stop(pid);
	}
	srv_user = "officer";
	srv_pw = "s3cret-pw";

	/* Credentials in the URL work the same, and never show in an error. */
	pid = server_start(port, "basic");
	snprintf(url, sizeof(url), "rtsp://officer:s3cret-pw@127.0.0.1:%d/nothere", port);
	conf.url = url;
	rc = dp_rtsp_open(&r, &conf, err, sizeof(err));
	CHECK(rc == -EPROTO || rc == -EACCES);
	CHECK(strstr(err, "s3cret") == NULL && strstr(err, "officer") == NULL);
	server_stop(pid);

	/* A server that answers HTTP. */
	int lfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)(port + 1)), .sin_addr.s_addr = htonl(0x7f000001) };
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	CHECK(bind(lfd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(lfd, 1) == 0);
	pthread_t th;
	pthread_create(&th, NULL, garbage_server, &lfd);
	snprintf(url, sizeof(url), "rtsp://127.0.0.1:%d/cam", port + 1);
	conf.url = url;
	CHECK_EQ_INT(dp_rtsp_open(&r, &conf, err, sizeof(err)), -EBADMSG);
	pthread_join(th, NULL);
	close(lfd);
	(void)waited;
	return vg_test_exit();
}
