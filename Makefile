# The two commands a newcomer needs (README.md):
#   make demo   set up, build, and run the appliance's main job on its embedded defaults
#   make test   set up, build, and run the test suites; non-zero if any test fails
# and, on demand: make bench (benchmarks, never gating), make clean.
#
# Set-up (tools/bootstrap) installs what is missing and is silent when nothing is.

BUILD ?= build
MESON_OPTS ?=

.PHONY: all setup build demo test bench clean

all: build

setup:
	@tools/bootstrap

$(BUILD)/build.ninja: | setup
	@meson setup $(BUILD) $(MESON_OPTS) >$(BUILD).setup.log 2>&1 || \
		{ grep -m1 -E 'ERROR|missing dependency' $(BUILD).setup.log || tail -n 1 $(BUILD).setup.log; exit 1; }
	@rm -f $(BUILD).setup.log

build: setup $(BUILD)/build.ninja
	@ninja -C $(BUILD) --quiet

demo: build
	@tools/demo $(BUILD)

# All suites, then the unit tests and fuzz replays under ASan, UBSan and TSan (tools/test).
test: build
	@tools/test $(BUILD)

bench: build
	@meson test -C $(BUILD) --benchmark --print-errorlogs

clean:
	rm -rf $(BUILD)
