/*
 * common/vg_conf: defaults, bounds, types, runtime mutability, secrets, all-or-nothing file
 * parsing with line numbers, and the sample config round-tripping to the defaults.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vg_test.h"
#include "vg_base.h"
#include "vg_conf.h"

struct cam_conf {
	int64_t analysis_fps;
	double threshold;
	bool enabled;
	char url[64];
	char password[32];
	int codec;
};

static const char *const codecs[] = { "h264", "h265", "mjpeg", NULL };

static int check_fps(void *obj, const struct vg_conf_entry *e, char *err, size_t errlen)
{
	struct cam_conf *c = obj;

	if (c->analysis_fps == 13) {
		snprintf(err, errlen, "%s: 13 frames per second is unlucky", e->name);
		return -EINVAL;
	}
	return 0;
}

static struct vg_conf_entry cam_entries[] = {
	VG_CONF_INT("camera.analysis_fps", VG_CONF_MUTABLE, struct cam_conf, analysis_fps, "10", 1, 60,
		    "frames analysed per second per camera"),
	VG_CONF_DOUBLE("camera.threshold", VG_CONF_MUTABLE, struct cam_conf, threshold, "0.6", 0, 4,
		       "L2 match threshold"),
	VG_CONF_BOOL("camera.enabled", VG_CONF_RESTART, struct cam_conf, enabled, "yes", "whether to ingest"),
	VG_CONF_STRING("camera.url", VG_CONF_RESTART, struct cam_conf, url, "rtsp://10.0.0.2/stream1",
		       "RTSP URL"),
	VG_CONF_STRING("camera.password", VG_CONF_RESTART | VG_CONF_SECRET, struct cam_conf, password, "",
		       "RTSP password"),
	VG_CONF_ENUM("camera.codec", VG_CONF_RESTART, struct cam_conf, codec, "h264", codecs, "expected codec"),
};

static const struct vg_conf_table cam_table = { "camera", cam_entries, VG_ARRAY_SIZE(cam_entries),
						sizeof(struct cam_conf) };

/* Defaults land in every field; the fps hook is installed for the steps that follow. */
static void check_defaults(struct vg_conf_set *set, struct cam_conf *cam)
{
	char err[256];

	cam_entries[0].apply = check_fps;
	CHECK_EQ_INT(vg_conf_set_defaults(set, err, sizeof(err)), 0);
	CHECK_EQ_INT(cam->analysis_fps, 10);
	CHECK(fabs(cam->threshold - 0.6) < 1e-12);
	CHECK(cam->enabled);
	CHECK(strcmp(cam->url, "rtsp://10.0.0.2/stream1") == 0);
	CHECK_EQ_INT(cam->codec, 0);
}

/* Single values: parse, bounds, types, run-time mutability, apply hook. */
static void check_single_values(struct vg_conf_set *set, struct cam_conf *cam)
{
	char err[256];

	CHECK_EQ_INT(vg_conf_set_value(set, "camera.analysis_fps", "25", true, err, sizeof(err)), 0);
	CHECK_EQ_INT(cam->analysis_fps, 25);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.analysis_fps", "61", true, err, sizeof(err)), -ERANGE);
	CHECK(strstr(err, "outside 1..60") != NULL);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.analysis_fps", "ten", true, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.analysis_fps", "13", true, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unlucky") != NULL);
	CHECK_EQ_INT(cam->analysis_fps, 25); /* refused values leave the old one */
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.enabled", "no", true, err, sizeof(err)), -EPERM);
	CHECK(cam->enabled);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.enabled", "off", false, err, sizeof(err)), 0);
	CHECK(!cam->enabled);
	/* At run time a restart-only setting may be repeated with its current value (a whole file
	 * reloaded), just not changed. */
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.enabled", "no", true, err, sizeof(err)), 0);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.enabled", "yes", true, err, sizeof(err)), -EPERM);
	CHECK(!cam->enabled);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.nope", "1", false, err, sizeof(err)), -ENOENT);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.codec", "MJPEG", false, err, sizeof(err)), 0);
	CHECK_EQ_INT(cam->codec, 2);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.codec", "vp9", false, err, sizeof(err)), -EINVAL);
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.threshold", "nan", true, err, sizeof(err)), -EINVAL);
	char long_url[100];
	memset(long_url, 'a', sizeof(long_url) - 1);
	long_url[sizeof(long_url) - 1] = '\0';
	CHECK_EQ_INT(vg_conf_set_value(set, "camera.url", long_url, false, err, sizeof(err)), -ERANGE);
}

/* Secrets are never shown. */
static void check_secrets(struct vg_conf_set *set)
{
	char err[256], buf[128];

	CHECK_EQ_INT(vg_conf_set_value(set, "camera.password", "hunter2", false, err, sizeof(err)), 0);
	CHECK(vg_conf_get_value(set, "camera.password", buf, sizeof(buf)) > 0);
	CHECK(strcmp(buf, "(secret)") == 0);
	CHECK(vg_conf_get_value(set, "camera.analysis_fps", buf, sizeof(buf)) > 0);
	CHECK(strcmp(buf, "25") == 0);
}

/* Whole files: what lands, all or nothing with the bad line named, and reloads at run time. */
static void check_files(struct vg_conf_set *set, struct cam_conf *cam)
{
	char err[256];
	int rc;

	/* A file: comments, quotes, CRLF; counts what it applied. */
	static const char good[] = "# a camera\n"
				   "camera.analysis_fps = 5   # slow\r\n"
				   "\n"
				   "  camera.url = \"rtsp://cam/a \\\"b\\\"\"  # quoted\n"
				   "camera.threshold=0.5";
	rc = vg_conf_parse(set, good, strlen(good), false, err, sizeof(err));
	CHECK_EQ_INT(rc, 3);
	CHECK_EQ_INT(cam->analysis_fps, 5);
	CHECK(strcmp(cam->url, "rtsp://cam/a \"b\"") == 0);
	CHECK(fabs(cam->threshold - 0.5) < 1e-12);

	/* All or nothing: line 3 is bad, so lines 1-2 do not land either, and the error names line 3. */
	static const char bad[] = "camera.analysis_fps = 7\ncamera.threshold = 0.7\ncamera.threshold = 9\n";
	rc = vg_conf_parse(set, bad, strlen(bad), false, err, sizeof(err));
	CHECK_EQ_INT(rc, -ERANGE);
	CHECK(strncmp(err, "line 3: ", 8) == 0);
	CHECK_EQ_INT(cam->analysis_fps, 5);
	CHECK(fabs(cam->threshold - 0.5) < 1e-12);
	static const char *const malformed[] = {
		"camera.url = \"unterminated\n", "just words\n", " = 3\n", "camera.url = \"a\" b\n",
		"camera.analysis_fps = 1\0x\n",
	};
	for (size_t i = 0; i < VG_ARRAY_SIZE(malformed); i++)
		CHECK(vg_conf_parse(set, malformed[i], strlen(malformed[i]) + (i == 4 ? 3 : 0), false, err,
				    sizeof(err)) < 0);
	/* A reload at run time refuses restart-only settings, and applies nothing. */
	static const char reload[] = "camera.analysis_fps = 8\ncamera.enabled = yes\n";
	CHECK_EQ_INT(vg_conf_parse(set, reload, strlen(reload), true, err, sizeof(err)), -EPERM);
	CHECK_EQ_INT(cam->analysis_fps, 5);
}

/* The sample config, uncommented, parses back to exactly the defaults. */
static void check_sample_round_trip(struct vg_conf_set *set, const struct vg_conf_table *const *tables)
{
	char err[256];
	int rc;

	char path[] = "/tmp/vg-conf-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *f = fdopen(fd, "w+");
	CHECK_EQ_INT(vg_conf_write_sample(set, f), 0);
	rewind(f);
	char sample[8192];
	size_t n = fread(sample, 1, sizeof(sample) - 1, f);
	sample[n] = '\0';
	fclose(f);
	CHECK(strstr(sample, "# frames analysed per second per camera\n# 1..60; changes at run time") != NULL);
	CHECK(strstr(sample, "hunter2") == NULL);
	/* Uncomment the settings (lines "#camera.x = ..."), write, load. */
	char uncommented[8192];
	size_t w = 0;
	for (const char *line = sample; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line + 1) : strlen(line);
		if (strncmp(line, "#camera.", 8) == 0) {
			line++;
			len--;
		}
		memcpy(uncommented + w, line, len);
		w += len;
		line += len;
	}
	uncommented[w] = '\0';
	f = fopen(path, "w");
	fputs(uncommented, f);
	fclose(f);
	struct cam_conf loaded;
	void *objs2[] = { &loaded };
	struct vg_conf_set set2 = { tables, objs2, 1 };
	memset(&loaded, 0x5a, sizeof(loaded));
	CHECK_EQ_INT(vg_conf_set_defaults(&set2, err, sizeof(err)), 0);
	struct cam_conf defaults;
	memcpy(&defaults, &loaded, sizeof(defaults));
	loaded.analysis_fps = 99;
	rc = vg_conf_load_file(&set2, path, false, err, sizeof(err));
	CHECK_EQ_INT(rc, 6);
	CHECK(memcmp(&loaded, &defaults, sizeof(loaded)) == 0);
	unlink(path);
	CHECK(vg_conf_load_file(&set2, "/nonexistent/vigil.conf", false, err, sizeof(err)) == -ENOENT);
	CHECK(strstr(err, "/nonexistent/vigil.conf") != NULL);
}

/* --help lists every setting. */
static void check_help(struct vg_conf_set *set)
{
	char *help = NULL;
	size_t help_len = 0;
	FILE *f = open_memstream(&help, &help_len);
	CHECK_EQ_INT(vg_conf_write_help(set, f), 0);
	fclose(f);
	for (size_t i = 0; i < VG_ARRAY_SIZE(cam_entries); i++)
		CHECK(strstr(help, cam_entries[i].name) != NULL);
	CHECK(strstr(help, "h264|h265|mjpeg") != NULL);
	free(help);
}

int main(void)
{
	struct cam_conf cam;
	const struct vg_conf_table *tables[] = { &cam_table };
	void *objs[] = { &cam };
	struct vg_conf_set set = { tables, objs, 1 };

	check_defaults(&set, &cam);
	check_single_values(&set, &cam);
	check_secrets(&set);
	check_files(&set, &cam);
	check_sample_round_trip(&set, tables);
	check_help(&set);
	return vg_test_exit();
}
