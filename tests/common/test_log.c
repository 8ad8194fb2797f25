/* common/vg_log: levels per type, arguments not evaluated below the level, the sink, spec parsing. */
#include <errno.h>
#include <string.h>

#include "vg_test.h"
#include "vg_log.h"

static char last_line[2048];
static enum vg_log_type last_type;
static int lines;

static void capture(void *arg, enum vg_log_type type, enum vg_log_level level, const char *line)
{
	(void)arg;
	(void)level;
	snprintf(last_line, sizeof(last_line), "%s", line);
	last_type = type;
	lines++;
}

static int evaluated;
static int side_effect(void)
{
	return ++evaluated;
}

int main(void)
{
	vg_log_set_sink(capture, NULL);

	CHECK_EQ_INT(vg_log_set_levels("info"), 0);
	VG_LOG(MATCH, INFO, "shard %d ready", 3);
	CHECK_EQ_INT(lines, 1);
	CHECK(strcmp(last_line, "shard 3 ready") == 0);
	CHECK_EQ_INT(last_type, VG_LOGTYPE_MATCH);

	/* Below the level: no line, and the arguments are not evaluated. */
	VG_LOG(MATCH, DEBUG, "never %d", side_effect());
	CHECK_EQ_INT(lines, 1);
	CHECK_EQ_INT(evaluated, 0);

	/* Per-type override. */
	CHECK_EQ_INT(vg_log_set_levels("warn,dataplane=debug"), 0);
	VG_LOG(DP, DEBUG, "rtp %d", side_effect());
	CHECK_EQ_INT(lines, 2);
	CHECK_EQ_INT(evaluated, 1);
	VG_LOG(STORE, INFO, "quiet");
	CHECK_EQ_INT(lines, 2);
	CHECK(vg_log_enabled(VG_LOGTYPE_STORE, VG_LOG_WARN));
	CHECK(!vg_log_enabled(VG_LOGTYPE_STORE, VG_LOG_NOTICE));

	/* A bad spec is refused whole: nothing changes. */
	CHECK_EQ_INT(vg_log_set_levels("debug,nosuchtype=info"), -EINVAL);
	CHECK(!vg_log_enabled(VG_LOGTYPE_STORE, VG_LOG_DEBUG));
	CHECK_EQ_INT(vg_log_set_levels("matcher=loud"), -EINVAL);
	CHECK_EQ_INT(vg_log_set_levels(",info"), -EINVAL);
	CHECK(vg_log_enabled(VG_LOGTYPE_DP, VG_LOG_DEBUG));

	/* Long lines are cut, bounded, and marked. */
	char big[3000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	VG_LOG(DP, ERR, "%s", big);
	CHECK_EQ_INT(strlen(last_line), 1023);
	CHECK(strcmp(last_line + 1020, "...") == 0);

	CHECK(strcmp(vg_log_type_name(VG_LOGTYPE_GPU), "gpu") == 0);
	CHECK(strcmp(vg_log_level_name(VG_LOG_NOTICE), "notice") == 0);
	vg_log_set_sink(NULL, NULL);
	return vg_test_exit();
}
