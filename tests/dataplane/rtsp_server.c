/*
 * The RTSP server the RTSP client is tested against: gst-rtsp-server (GStreamer's own library),
 * serving a live H.264 test pattern at rtsp://127.0.0.1:PORT/cam, with no authentication, Basic
 * or Digest; or, given a Matroska file of H.264, that recording, in real time (its timestamps pace
 * it), as a camera pointed at real people would. Built only for the tests.
 *   rtsp_server PORT none|basic|digest [USER PASSWORD] [FILE.mkv]
 */
#include <gst/gst.h>
#include <gst/rtsp-server/rtsp-server.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	GMainLoop *loop;
	GstRTSPServer *server;
	GstRTSPMountPoints *mounts;
	GstRTSPMediaFactory *factory;

	gst_init(&argc, &argv);
	if (argc < 3 || (strcmp(argv[2], "none") && argc < 5)) {
		fprintf(stderr, "usage: rtsp_server PORT none|basic|digest [USER PASSWORD] [FILE.mkv]\n");
		return 2;
	}
	const char *mkv = argc > 3 && strstr(argv[argc - 1], ".mkv") ? argv[argc - 1] : NULL;
	gchar *launch = mkv ? g_strdup_printf("( filesrc location=\"%s\" ! matroskademux ! h264parse ! "
					      "rtph264pay name=pay0 pt=96 config-interval=-1 )", mkv)
			    : g_strdup("( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=10/1 ! "
				       "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! "
				       "rtph264pay name=pay0 pt=96 config-interval=-1 )");
	loop = g_main_loop_new(NULL, FALSE);
	server = gst_rtsp_server_new();
	gst_rtsp_server_set_address(server, "127.0.0.1");
	gst_rtsp_server_set_service(server, argv[1]);
	mounts = gst_rtsp_server_get_mount_points(server);
	factory = gst_rtsp_media_factory_new();
	gst_rtsp_media_factory_set_launch(factory, launch);
	g_free(launch);
	gst_rtsp_media_factory_set_shared(factory, TRUE);
	if (strcmp(argv[2], "none")) {
		GstRTSPAuth *auth = gst_rtsp_auth_new();
		GstRTSPToken *token = gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, "user", NULL);
		if (!strcmp(argv[2], "digest")) {
			gst_rtsp_auth_add_digest(auth, argv[3], argv[4], token);
			gst_rtsp_auth_set_supported_methods(auth, GST_RTSP_AUTH_DIGEST);
		} else {
			gchar *basic = gst_rtsp_auth_make_basic(argv[3], argv[4]);
			gst_rtsp_auth_add_basic(auth, basic, token);
			g_free(basic);
		}
		gst_rtsp_token_unref(token);
		gst_rtsp_server_set_auth(server, auth);
		g_object_unref(auth);
		gst_rtsp_media_factory_add_role(factory, "user", GST_RTSP_PERM_MEDIA_FACTORY_ACCESS, G_TYPE_BOOLEAN, TRUE,
						GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, G_TYPE_BOOLEAN, TRUE, NULL);
	}
	gst_rtsp_mount_points_add_factory(mounts, "/cam", factory);
	g_object_unref(mounts);
	if (gst_rtsp_server_attach(server, NULL) == 0) {
		fprintf(stderr, "rtsp_server: cannot listen on port %s\n", argv[1]);
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	g_main_loop_run(loop);
	return 0;
}
