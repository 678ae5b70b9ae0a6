# Portless: `make demo` and `make test` are all a newcomer needs (Debian, Swift 6.3 toolchain).
SHELL := /bin/bash
APT_PACKAGES := libuv1-dev libssl-dev libsqlite3-dev openssh-server openssh-client curl iproute2 nftables python3 python3-venv valgrind binutils systemd postgresql chromium chromium-driver
BIN_DIR = $(shell swift build --show-bin-path)
DEMO_STATE := .state/demo
# The official MCP, OpenAI and Anthropic Python clients (and fastmcp for the demo's MCP servers, PyJWT for the
# test identity provider, prometheus-client for its exposition-format parser, selenium to drive Chromium), from PyPI.
VENV := .build/venv
PYTHON_PACKAGES := mcp==2.3.0 fastmcp==4.2.3 openai==3.57.0 anthropic==2.15.0 pyjwt==2.15.1 prometheus-client==0.26.0 selenium==4.27.1
export PORTLESS_PYTHON := $(CURDIR)/$(VENV)/bin/python

.PHONY: setup venv build release demo test fuzz bench clean

setup:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

venv: setup $(VENV)/.installed

$(VENV)/.installed: Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q $(PYTHON_PACKAGES)
	@touch $@

build: venv
	swift build

release: setup
	swift build -c release

demo: build
	@rm -rf $(DEMO_STATE); mkdir -p .state
	@trap '$(BIN_DIR)/portless topology down --state $(DEMO_STATE) >/dev/null' EXIT; \
	$(BIN_DIR)/portless topology up topology/quickstart.yaml --state $(DEMO_STATE) && \
	address=$$($(BIN_DIR)/portless topology status --state $(DEMO_STATE) --intercept hello) && \
	echo && echo "$$ curl http://$$address/   # laptop tunneler → edge router → enterprise tunneler → private service" && \
	curl -sS --max-time 10 http://$$address/ && \
	PATH=$(BIN_DIR):$$PATH DEMO_STATE=$(DEMO_STATE) topology/mcp/demo.sh && \
	PATH=$(BIN_DIR):$$PATH DEMO_STATE=$(DEMO_STATE) topology/llm/demo.sh

test: build
	swift build --build-tests
	@mkdir -p .build
	set -o pipefail; PORTLESS_BIN_DIR=$(BIN_DIR) swift test --skip-build --disable-swift-testing 2>&1 | tee .build/test.log
	$(MAKE) -s fuzz FUZZ_SECONDS=10
	@# One plain closing line for whoever reads the end of the log.
	@grep -E "Executed [0-9]+ tests?, with [0-9]+ failures?" .build/test.log | tail -1 | \
	  sed -E 's/.*Executed ([0-9]+) tests?, with ([0-9]+) failures?.*/\1 \2/' | \
	  awk '{ printf "tests: %d passed, %d failed\n", $$1 - $$2, $$2 }'

# libFuzzer over the frame decoder (a pure function over bytes): FUZZ_SECONDS of random input.
FUZZ_SECONDS ?= 60
fuzz:
	@mkdir -p .build/fuzz
	swiftc -sanitize=fuzzer,address -parse-as-library -O Sources/Shared/Wire/FrameDecoder.swift \
	  Sources/Shared/Wire/FrameHeader.swift Sources/Shared/Transport/TransportLimits.swift Fuzz/FrameDecoderFuzz.swift \
	  -o .build/fuzz/frame-decoder 2>/dev/null
	set -o pipefail; .build/fuzz/frame-decoder -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E "stat::number_of_executed_units|ERROR|SUMMARY|Done"

bench: build
	Benchmarks/run

clean:
	rm -rf .build .state
