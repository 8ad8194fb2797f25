/*
 * Forwards to tests/lib/vg_test.h, for the three files that still write #include "../vg_test.h"
 * (tests/mgmt/test_mgmt_admin.c, test_mgmt_audit.c, test_mgmt_daemon.c: being changed on other
 * branches). Delete this file once they read #include "vg_test.h" like every other test.
 */
#include "lib/vg_test.h"
