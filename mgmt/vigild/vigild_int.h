/* vigild's subcommands, one file each, and what they lend each other (main thread unless said). */
#ifndef VIGILD_INT_H
#define VIGILD_INT_H

#include "mgmt.h"

int vigild_run_main(int argc, char **argv);           /* vigild_run.c */
int vigild_serve_main(int argc, char **argv);         /* vigild_serve.c */
int vigild_sample_config_main(int argc, char **argv); /* vigild_serve.c */

/* camera.probe through the dataplane's RTSP client (vigild_probe.c); on the daemon's loop. */
mgmt_probe_fn vigild_camera_probe;

#endif /* VIGILD_INT_H */
