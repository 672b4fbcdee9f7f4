# v9 — developer tasks. `make` (or `make help`) lists the targets.
#
# Tools are installed pinned into ./bin (gitignored) by `make tools`; nothing is taken from the
# user's PATH except the Go toolchain, git and a POSIX shell.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

GO  ?= go
BIN := $(CURDIR)/bin

# Pinned tool versions. Bumping one reinstalls that tool on the next `make tools`.
BUF_VERSION                   := v1.75.0
PROTOC_GEN_GO_VERSION         := v1.36.12
PROTOC_GEN_CONNECT_GO_VERSION := v1.21.1
# staticcheck v0.8.2 is the release named 2026.2.2.
STATICCHECK_VERSION           := v0.8.2

BUF         := $(BIN)/buf
STATICCHECK := $(BIN)/staticcheck

# Knobs (override on the command line: make fuzz FUZZTIME=1m).
TEST_PKGS    ?= ./...
# Tests in //go:build !race files (wasm compilation is 15x slower under -race); they run in a
# second pass without the race detector. Name such tests TestDataPlane* or TestNoRace*.
NORACE_TESTS ?= ^(TestDataPlane|TestNoRace)
TEST_TIMEOUT ?= 20m
TESTFLAGS    ?=
FUZZTIME     ?= 20s
FUZZ_PKGS    ?= ./...
BENCH        ?= .
BENCHTIME    ?= 1s
BENCHCOUNT   ?= 1
BENCH_PKGS   ?= ./...
DEV_DATA_DIR ?= .v9-dev
# make run PORTS=17900: API ports 17900-17902, Raft 17910-17912, proxies 18080-18082. Empty: the
# ports DEV_DATA_DIR recorded on its first run, else 7900/7910/8080.
PORTS             ?=
# A containerd for container components (make containerd starts a private one there).
CONTAINERD_DIR    ?= /tmp/v9-containerd
CONTAINERD_SOCKET ?=
# make install: into $(GOBIN) when set, else $(PREFIX)/bin.
PREFIX ?= /usr/local
GOBIN  ?= $(shell $(GO) env GOBIN)
INSTALL_DIR := $(if $(GOBIN),$(GOBIN),$(PREFIX)/bin)
TLA2TOOLS    ?=

# go-tool installs one Go tool at a pinned version into bin/. The stamp file carries the
# version, so the install runs once per version; a binary already in bin/ built from the same
# module version (read with `go version -m`) is kept instead of being rebuilt.
#   $(1) binary name, $(2) package path, $(3) version
define go-tool
$(BIN)/.$(1)-$(3).stamp:
	@mkdir -p $(BIN)
	@if [ -x $(BIN)/$(1) ] && [ "$$$$($(GO) version -m $(BIN)/$(1) 2>/dev/null | awk '$$$$1 == "mod" { print $$$$3; exit }')" = "$(3)" ]; then \
		echo "tools: $(1) $(3) already in bin/"; \
	else \
		echo "tools: installing $(1) $(3)"; \
		GOBIN=$(BIN) $(GO) install $(2)@$(3); \
	fi
	@touch $$@
endef

$(eval $(call go-tool,buf,github.com/bufbuild/buf/cmd/buf,$(BUF_VERSION)))
$(eval $(call go-tool,protoc-gen-go,google.golang.org/protobuf/cmd/protoc-gen-go,$(PROTOC_GEN_GO_VERSION)))
$(eval $(call go-tool,protoc-gen-connect-go,connectrpc.com/connect/cmd/protoc-gen-connect-go,$(PROTOC_GEN_CONNECT_GO_VERSION)))
$(eval $(call go-tool,staticcheck,honnef.co/go/tools/cmd/staticcheck,$(STATICCHECK_VERSION)))

BUF_TOOL         := $(BIN)/.buf-$(BUF_VERSION).stamp
GEN_TOOLS        := $(BUF_TOOL) \
                    $(BIN)/.protoc-gen-go-$(PROTOC_GEN_GO_VERSION).stamp \
                    $(BIN)/.protoc-gen-connect-go-$(PROTOC_GEN_CONNECT_GO_VERSION).stamp
STATICCHECK_TOOL := $(BIN)/.staticcheck-$(STATICCHECK_VERSION).stamp

# The console's Node.js packages (pinned in webui/package-lock.json), protoc-gen-es among them.
# npm ci runs again whenever the lockfile changes.
NPM       ?= npm
WEBUI_NPM := webui/node_modules/.package-lock.json
GEN_TOOLS += $(WEBUI_NPM)
GEN_DIRS  := rpc/gen webui/src/gen

$(WEBUI_NPM): webui/package-lock.json webui/package.json
	cd webui && $(NPM) ci --no-audit --no-fund
	@touch $@

# Sources the console's build depends on (its output, webui/dist, is embedded by webui/embed.go).
WEBUI_SRC := $(shell find webui/src webui/index.html webui/vite.config.ts webui/precompress.mjs webui/tsconfig.json -type f 2>/dev/null)

.PHONY: help
help: ## list the targets (the default)
	@echo "usage: make <target> [VAR=value ...]"
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-zA-Z0-9_-]+:.*## / { printf "  %-16s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
	@echo
	@echo "variables: FUZZTIME=$(FUZZTIME) BENCH=$(BENCH) BENCHTIME=$(BENCHTIME) BENCH_PKGS=$(BENCH_PKGS) TEST_PKGS=$(TEST_PKGS) TLA2TOOLS=$(TLA2TOOLS)"

.PHONY: tools
tools: $(GEN_TOOLS) $(STATICCHECK_TOOL) ## install pinned buf, protoc-gen-go, protoc-gen-connect-go, staticcheck into bin/, and webui's npm packages

.PHONY: generate
generate: $(GEN_TOOLS) ## regenerate rpc/gen (Go) and webui/src/gen (TypeScript) from rpc/proto with buf (stale generated files are removed)
	PATH="$(BIN):$$PATH" BUF=$(BUF) bash scripts/generate.sh

.PHONY: check-generate
check-generate: generate ## regenerate and fail if rpc/gen or webui/src/gen differs from git (changed, deleted or untracked files)
	@if ! git diff --exit-code --stat -- $(GEN_DIRS); then \
		echo "check-generate: $(GEN_DIRS) is out of date with rpc/proto; run 'make generate' and commit the result" >&2; \
		exit 1; \
	fi
	@untracked="$$(git ls-files --others --exclude-standard -- $(GEN_DIRS))"; \
	if [ -n "$$untracked" ]; then \
		echo "$$untracked"; \
		echo "check-generate: untracked generated files under $(GEN_DIRS) (listed above); commit them" >&2; \
		exit 1; \
	fi
	@echo "check-generate: $(GEN_DIRS) match rpc/proto"

.PHONY: lint
lint: $(BUF_TOOL) $(STATICCHECK_TOOL) ## gofmt -l, go vet, staticcheck, buf lint (runs all; fails if any fails)
	@status=0; \
	echo "lint: gofmt -l"; \
	unformatted="$$(git ls-files --cached --others --exclude-standard -- '*.go' \
		| while read -r f; do [ ! -f "$$f" ] || echo "$$f"; done | xargs -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then echo "$$unformatted"; echo "lint: gofmt: run 'gofmt -w' on the files above"; status=1; fi; \
	echo "lint: go vet ./..."; \
	$(GO) vet ./... || status=1; \
	echo "lint: staticcheck ./..."; \
	$(STATICCHECK) ./... || status=1; \
	echo "lint: buf lint"; \
	$(BUF) lint || status=1; \
	if [ $$status -eq 0 ]; then echo "lint: ok"; else echo "lint: FAILED" >&2; fi; \
	exit $$status

.PHONY: test
test: ## run all tests with the race detector, then the few too slow under it (//go:build !race)
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT)$(if $(TESTFLAGS), $(TESTFLAGS)) $(TEST_PKGS)
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -run '$(NORACE_TESTS)'$(if $(TESTFLAGS), $(TESTFLAGS)) $(TEST_PKGS)

HOSTILE_FLOOD ?= 2000

.PHONY: hostile
hostile: ## the hostile-input suite with its full slow-body flood (HOSTILE_FLOOD=2000 connections; CI runs 200)
	$(GO) test -count=1 -timeout 10m -v -run '^TestHostile' ./internal/hostile/ -hostile.flood $(HOSTILE_FLOOD)

JEPSEN_DURATION ?= 5m
JEPSEN_OUT      ?= $(CURDIR)/jepsen-out

.PHONY: jepsen
jepsen: build ## crash storm: 3 agents, kill -9 every 2-4s, porcupine per name (JEPSEN_DURATION=5m; logs, failing histories in jepsen-out/)
	@mkdir -p $(JEPSEN_OUT)
	$(GO) test -count=1 -timeout 60m -run '^TestNoRaceJepsen$$' -v ./internal/jepsen/ \
		-jepsen.long -jepsen.duration $(JEPSEN_DURATION) -jepsen.bin $(CURDIR)/bin/v9 -jepsen.out $(JEPSEN_OUT)

.PHONY: fuzz
fuzz: ## run every Fuzz* target in the repo for FUZZTIME each (default 20s)
	@GO="$(GO)" bash scripts/fuzz.sh "$(FUZZTIME)" $(FUZZ_PKGS)

.PHONY: bench
bench: ## run benchmarks (BENCH=regexp BENCHTIME=1s BENCHCOUNT=1 BENCH_PKGS=./...)
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCHTIME) -count $(BENCHCOUNT) -benchmem $(BENCH_PKGS)

webui/dist/index.html: $(WEBUI_NPM) $(WEBUI_SRC)
	cd webui && $(NPM) run build

.PHONY: console
console: webui/dist/index.html ## build the web console into webui/dist (npm ci from the lockfile first); the next Go build embeds it

.PHONY: console-test
console-test: $(WEBUI_NPM) ## type-check the console and run its unit tests (Vitest)
	cd webui && $(NPM) run typecheck && $(NPM) test

.PHONY: build
build: console ## build bin/v9 with the console embedded
	@# go build -v names each package it compiles: show a count instead, and every other line
	@# (errors) as it is. A first build downloads the modules and compiles ~400 packages.
	@if [ -x bin/v9 ]; then echo "build: go build -o bin/v9 ./cmd/v9"; \
	else echo "build: go build -o bin/v9 ./cmd/v9 (first build: downloads the Go modules, then compiles ~400 packages; minutes on 2 cores, seconds afterwards)"; fi
	@$(GO) build -v -o bin/v9 ./cmd/v9 2>&1 | awk '/^[A-Za-z0-9._~\/-]+$$/ { n++; if (n % 50 == 0) { printf "build: %d packages compiled\n", n; fflush() } next } { print; fflush() }'
	@echo "build: bin/v9 ready"

.PHONY: run
run: build ## build, then start a local three-node cluster and deploy the example (PORTS=17900, DEV_DATA_DIR=.v9-dev, CONTAINERD_SOCKET=...; Ctrl-C stops it)
	bin/v9 dev --data-dir $(DEV_DATA_DIR)$(if $(PORTS), --ports $(PORTS))$(if $(CONTAINERD_SOCKET), --containerd-socket $(CONTAINERD_SOCKET))

.PHONY: install
install: build ## copy bin/v9 to $$GOBIN, else $(PREFIX)/bin (PREFIX=/usr/local; may need sudo)
	@mkdir -p $(DESTDIR)$(INSTALL_DIR)
	install -m 0755 bin/v9 $(DESTDIR)$(INSTALL_DIR)/v9
	@case ":$$PATH:" in *":$(INSTALL_DIR):"*) echo "install: $(INSTALL_DIR)/v9 (on your PATH: run v9)";; \
	*) echo "install: $(INSTALL_DIR)/v9; $(INSTALL_DIR) is not on your PATH: add it (export PATH=\"$(INSTALL_DIR):\$$PATH\")";; esac

.PHONY: containerd
containerd: ## start a private containerd for container components (root; CONTAINERD_DIR=/tmp/v9-containerd), as the tests do
	@bash scripts/containerd-test.sh start $(CONTAINERD_DIR) >/dev/null
	@echo "containerd: running with everything under $(CONTAINERD_DIR) (log: $(CONTAINERD_DIR)/containerd.log)"
	@echo "containerd: now  make run CONTAINERD_SOCKET=$(CONTAINERD_DIR)/containerd.sock"
	@echo "containerd: stop it with  make containerd-stop"

.PHONY: containerd-stop
containerd-stop: ## stop the private containerd of make containerd, and what it runs
	bash scripts/containerd-test.sh stop $(CONTAINERD_DIR)

.PHONY: docs
docs: ## regenerate the CLI reference in docs/cli from the commands' help (cobra)
	$(GO) run ./cmd/v9 gen-docs docs/cli

.PHONY: check-docs
check-docs: docs ## regenerate docs/cli and fail if it differs from git (CI runs this)
	@if ! git diff --exit-code --stat -- docs/cli || [ -n "$$(git ls-files --others --exclude-standard -- docs/cli)" ]; then \
		echo "check-docs: docs/cli is out of date with the commands; run 'make docs' and commit the result" >&2; \
		exit 1; \
	fi
	@echo "check-docs: docs/cli matches the commands"

.PHONY: readme-test
readme-test: build ## do what the README's quick start says against a fresh cluster (scripts/readme-test.sh)
	bash scripts/readme-test.sh

# TLC's working files (fingerprints, the liveness graph) go to TLA_METADIR, not the repository.
TLA_METADIR ?= $(or $(TMPDIR),/tmp)/v9-tlc-states
# TLC_WORKERS=1 is how the figures in tla/README.md were taken (a shared machine).
TLC_WORKERS ?= auto
TLC = java -XX:+UseParallelGC -cp "$(TLA2TOOLS)" tlc2.TLC -workers $(TLC_WORKERS) -noGenerateSpecTE -metadir $(TLA_METADIR)

.PHONY: tla-check-tools
tla-check-tools:
	@if [ -z "$(TLA2TOOLS)" ]; then \
		echo "tla: set TLA2TOOLS to the path of tla2tools.jar, e.g." >&2; \
		echo "       make tla TLA2TOOLS=\$$HOME/tla2tools.jar" >&2; \
		echo "     tla2tools.jar is in the TLA+ releases: https://github.com/tlaplus/tlaplus/releases" >&2; \
		echo "     (or build it from the tlaplus/tlaplus repository; see tla/README.md)." >&2; \
		echo "     TLC needs Java 11 or newer (java -version)." >&2; \
		exit 2; \
	fi

.PHONY: tla
tla: tla-check-tools ## model-check the placement protocol with TLC (needs TLA2TOOLS=/path/to/tla2tools.jar)
	$(TLC) -config tla/Placement.cfg tla/Placement.tla
	$(TLC) -config tla/PlacementFaultWeb.cfg tla/Placement.tla
	$(TLC) -config tla/PlacementDrain.cfg tla/Placement.tla
	$(TLC) -config tla/PlacementRemove.cfg tla/Placement.tla
	$(TLC) -config tla/PlacementRollout.cfg tla/Placement.tla

.PHONY: tla-full
tla-full: tla-check-tools ## model-check the larger placement model (tla/PlacementFull.cfg; longer than make tla)
	$(TLC) -config tla/PlacementFull.cfg tla/Placement.tla

# Each seeded-bug config and the invariant TLC must report violated.
TLA_BUGS = PlacementBug:ExclusiveNeverTwice PlacementRemoveBug:ExclusiveNeverTwice \
	PlacementRemoveKeepBug:RemovedHoldsNothing PlacementRolloutBug:AGoodVersionServes \
	PlacementCanaryBug:AGoodVersionServes

.PHONY: tla-bug
tla-bug: tla-check-tools ## check that TLC finds each seeded bug of tla/Placement*Bug.cfg
	@for b in $(TLA_BUGS); do cfg=$${b%%:*}; inv=$${b##*:}; \
		echo "$(TLC) -config tla/$$cfg.cfg tla/Placement.tla"; \
		out=$$($(TLC) -config tla/$$cfg.cfg tla/Placement.tla 2>&1) || true; \
		if echo "$$out" | grep -q "Invariant $$inv is violated"; then \
			echo "tla-bug: OK, $$cfg: TLC reports $$inv violated"; \
		else \
			echo "$$out"; echo "tla-bug: FAIL, $$cfg: TLC did not report $$inv violated" >&2; exit 1; \
		fi; \
	done

.PHONY: clean
clean: ## remove bin/v9, the built console (webui/dist) and the dev cluster's data (.v9-dev); keeps the tools in bin/
	rm -f bin/v9
	find webui/dist -mindepth 1 ! -name .gitkeep -delete 2>/dev/null || true
	rm -rf $(DEV_DATA_DIR)

.PHONY: clean-tools
clean-tools: ## remove all installed tools from bin/ (the next `make tools` reinstalls them)
	rm -f $(BIN)/buf $(BIN)/protoc-gen-go $(BIN)/protoc-gen-connect-go $(BIN)/staticcheck $(BIN)/.*.stamp
	rm -rf webui/node_modules
