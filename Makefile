# Creto — build, run and verify. Every target works on a fresh clone: the
# only prerequisite is the Go toolchain (go.mod pins everything else,
# including staticcheck through its `tool` directive).

SHELL   := /bin/bash
GO      ?= go
PKGS    := ./...
BENCH   ?= .
BENCHTIME ?= 1s
COUNT   ?= 3
FUZZTIME ?= 60s
# Pinned tools (buf, protoc plugins, grpcurl, grpc-health-probe) live here;
# see "API and tools" below.
TOOLS   := $(CURDIR)/.tools
BUF     := $(TOOLS)/buf

.PHONY: all run demo build test test-short bench bench-pdp fuzz lint fmt tools proto proto-baseline clean

all: lint test

## run: start a node (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:50080, state in ./creto-data) seeded with the example policies
run:
	$(GO) run ./cmd/creto serve --import-policies examples/policies --entities examples/entities.json --schema examples/schema.cedarschema

## demo: decide the example requests against the embedded example policies, without a server
demo:
	$(GO) run ./cmd/creto demo

## build: build the creto binary into bin/
build:
	$(GO) build -trimpath -o bin/creto ./cmd/creto

## test: vet, then every test with the race detector
test: wasm tools
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)
	$(GO) test -count=1 -run Contract ./node/ ./client/

## test-short: the quick subset, for the edit-compile loop
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: benchmarks against the anchors (see bench/RESULTS.md)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./bench/ ./engine/ ./services/crypto/
	cd bench/anchors && $(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(COUNT) .

## bench-pdp: creto serve against OPA's and Cerbos's servers on loopback (builds all three; slow the first time)
# The PDPs must agree first. Runs are repeated whole rather than with
# -count, so that the PDPs' figures interleave in time on a shared machine.
PDP_BENCHTIME ?= 3s
bench-pdp:
	cd bench/pdp && $(GO) test -count=1 -timeout 60m -run TestSameDecisions .
	cd bench/pdp && for i in $$(seq $(COUNT)); do \
	  $(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(PDP_BENCHTIME) -count 1 -timeout 60m . || exit 1; \
	done

## fuzz: run each fuzz target for FUZZTIME (not part of `make test`)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: gofmt, go vet, staticcheck, buf lint and the API breaking-change check must all be clean
lint: $(TOOLS)/buf
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null | grep -v '\.pb\.go$$' || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)
	cd bench/anchors && $(GO) vet ./...
	cd bench/pdp && $(GO) vet ./...
	cd bench/raftlog && $(GO) vet ./...
	$(BUF) lint
	$(BUF) breaking --against api/baseline.binpb

# ---- API and tools -----------------------------------------------------
# Code generators and the real gRPC clients the end-to-end tests drive,
# each pinned and installed into .tools/ (the tests find them there).

BUF_VERSION                := v1.75.0
PROTOC_GEN_GO_VERSION      := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
GRPCURL_VERSION            := v1.9.3
GRPC_HEALTH_PROBE_VERSION  := v0.4.62

$(TOOLS)/buf:
	GOBIN=$(TOOLS) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(TOOLS)/protoc-gen-go:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(TOOLS)/protoc-gen-go-grpc:
	GOBIN=$(TOOLS) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(TOOLS)/grpcurl:
	GOBIN=$(TOOLS) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)
$(TOOLS)/grpc-health-probe:
	GOBIN=$(TOOLS) $(GO) install github.com/grpc-ecosystem/grpc-health-probe@$(GRPC_HEALTH_PROBE_VERSION)

## tools: install the pinned API generators and gRPC clients into .tools/
tools: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc $(TOOLS)/grpcurl $(TOOLS)/grpc-health-probe

## proto: regenerate the committed Go code of api/ (buf lint first)
proto: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-grpc
	$(BUF) lint
	find api -name '*.pb.go' -delete
	$(BUF) generate

## proto-baseline: record the current API as the one `make lint` checks for breaking changes (at a release)
proto-baseline: $(TOOLS)/buf
	$(BUF) build -o api/baseline.binpb

## fmt: format the tree
fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin/ .tools/

# ---- Wasm extensions ---------------------------------------------------
# The SDKs' conformance guests and the example extensions, built into one
# build/ directory per language (docs/extensions.md). Each module is
# compiled into build/raw/, then annotated with the manifest.json it ships
# with. Set CRETO_SKIP_WASM=1 to let `go test` skip the Wasm suite instead.

.PHONY: wasm wasm-tools

WASM       := examples/wasm
CLANG      ?= clang
WAT2WASM   ?= wat2wasm
AS_DIR     := sdk/assemblyscript
ASC        := $(AS_DIR)/node_modules/.bin/asc
# npm ci rewrites this file, so it dates the installed compiler.
AS_STAMP   := $(AS_DIR)/node_modules/.package-lock.json
# The first rustc that has the wasm32-unknown-unknown standard library:
# rustup's once the target is added, otherwise Debian's.
RUSTC_WASM ?= $(shell for r in $$(command -v rustc) /usr/bin/rustc; do \
	[ -d "$$($$r --print sysroot 2>/dev/null)/lib/rustlib/wasm32-unknown-unknown" ] && { echo $$r; break; }; done)
ANNOTATE   ?= $(GO) run ./cmd/creto ext annotate

# Size first: -Oz, no libc, memcpy as memory.copy, no symbol names, and a
# small stack placed below the data so that an overflow traps instead of
# corrupting it.
CFLAGS_WASM    := --target=wasm32 -nostdlib -ffreestanding -Oz -mbulk-memory -Wall -Wextra -Werror \
	-Wl,--no-entry -Wl,--strip-all -Wl,--stack-first -Wl,-z,stack-size=16384
ASCFLAGS       := --runtime stub -Oz --converge --noAssert --use abort=
RUSTFLAGS_WASM := --target wasm32-unknown-unknown --edition 2021 -C opt-level=s -C panic=abort \
	-C codegen-units=1 -C target-feature=+bulk-memory

WASM_MODULES := \
	$(WASM)/c/build/conformance.wasm \
	$(WASM)/c/build/business_hours.wasm \
	$(WASM)/c/build/platform.wasm \
	$(WASM)/assemblyscript/build/conformance.wasm \
	$(WASM)/assemblyscript/build/two_person.wasm \
	$(WASM)/assemblyscript/build/platform.wasm \
	$(WASM)/rust/build/conformance.wasm \
	$(WASM)/rust/build/prod_guard.wasm \
	$(WASM)/rust/build/platform.wasm \
	$(WASM)/wat/build/conformance.wasm \
	$(WASM)/wat/build/agent_no_approve.wasm \
	$(WASM)/wat/build/inactive_guard.wasm \
	$(WASM)/wat/build/template.wasm

# The engine's own test guests are committed, assembled from the .wat
# beside them; this keeps them in step with their sources.
ENGINE_GUESTS := $(patsubst %.wat,%.wasm,$(wildcard engine/testdata/ext/*.wat))
HOST_GUESTS   := $(patsubst %.wat,%.wasm,$(wildcard hosts/testdata/*.wat))

engine/testdata/ext/%.wasm: engine/testdata/ext/%.wat | wasm-tools
	$(WAT2WASM) $< -o $@

hosts/testdata/%.wasm: hosts/testdata/%.wat | wasm-tools
	$(WAT2WASM) $< -o $@

## wasm: build the SDK conformance guests, the example extensions and the engine's and host modules' test guests
wasm: $(WASM_MODULES) $(ENGINE_GUESTS) $(HOST_GUESTS)

## wasm-tools: install the missing Wasm toolchains (Debian packages, as root) and the pinned AssemblyScript compiler
wasm-tools: $(AS_STAMP)
	@missing=; \
	  command -v $(CLANG) >/dev/null || missing="$$missing clang"; \
	  command -v wasm-ld >/dev/null || missing="$$missing lld"; \
	  command -v $(WAT2WASM) >/dev/null || missing="$$missing wabt"; \
	  [ -n "$(RUSTC_WASM)" ] || missing="$$missing rustc libstd-rust-dev-wasm32"; \
	  if [ -n "$$missing" ]; then \
	    if [ "$$(id -u)" != 0 ]; then echo "wasm-tools: missing$$missing; run make wasm-tools as root" >&2; exit 1; fi; \
	    echo "wasm-tools: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  fi

$(AS_STAMP): $(AS_DIR)/package.json $(AS_DIR)/package-lock.json
	cd $(AS_DIR) && npm ci --silent --no-audit --no-fund

# $(call wasm-annotate,LANG,NAME,MANIFEST)
define wasm-annotate
$(WASM)/$(1)/build/$(2).wasm: $(WASM)/$(1)/build/raw/$(2).wasm $(3)
	$$(ANNOTATE) $$< --manifest $(3) -o $$@
endef

# $(call wasm-c,NAME,SOURCE,MANIFEST)
define wasm-c
$(WASM)/c/build/raw/$(1).wasm: $(2) sdk/c/creto.h | wasm-tools
	@mkdir -p $$(@D)
	$$(CLANG) $$(CFLAGS_WASM) -Isdk/c -o $$@ $(2)
$(call wasm-annotate,c,$(1),$(3))
endef

# $(call wasm-as,NAME,SOURCE,MANIFEST)
define wasm-as
$(WASM)/assemblyscript/build/raw/$(1).wasm: $(2) $(wildcard $(AS_DIR)/assembly/*.ts) $(AS_STAMP) | wasm-tools
	@mkdir -p $$(@D)
	$$(ASC) $(2) $$(ASCFLAGS) -o $$@
$(call wasm-annotate,assemblyscript,$(1),$(3))
endef

# $(call wasm-rust,NAME,SOURCE,MANIFEST): a cdylib linked against the SDK.
define wasm-rust
$(WASM)/rust/build/raw/$(1).wasm: $(2) $(WASM)/rust/build/raw/libcreto.rlib | wasm-tools
	$$(RUSTC_WASM) $$(RUSTFLAGS_WASM) --crate-type cdylib -C lto -C strip=symbols -C link-arg=-zstack-size=16384 \
	  --extern creto=$(WASM)/rust/build/raw/libcreto.rlib -o $$@ $(2)
$(call wasm-annotate,rust,$(1),$(3))
endef

# $(call wasm-wat,NAME,SOURCE,MANIFEST): module fields, assembled after
# the guest's own with the helpers of sdk/wat/creto.wat.
define wasm-wat
$(WASM)/wat/build/raw/$(1).wasm: $(2) sdk/wat/creto.wat | wasm-tools
	@mkdir -p $$(@D)
	{ echo '(module'; cat $(2) sdk/wat/creto.wat; echo ')'; } > $$(@:.wasm=.wat)
	$$(WAT2WASM) $$(@:.wasm=.wat) -o $$@
$(call wasm-annotate,wat,$(1),$(3))
endef

$(WASM)/rust/build/raw/libcreto.rlib: sdk/rust/src/lib.rs $(wildcard sdk/rust/src/*.rs) | wasm-tools
	@mkdir -p $(@D)
	$(RUSTC_WASM) $(RUSTFLAGS_WASM) --crate-type rlib --crate-name creto -o $@ $<

$(eval $(call wasm-c,conformance,sdk/c/conformance/conformance.c,sdk/c/conformance/manifest.json))
$(eval $(call wasm-c,platform,sdk/c/platform/platform.c,sdk/c/platform/manifest.json))
$(eval $(call wasm-c,business_hours,$(WASM)/c/business_hours.c,$(WASM)/c/manifest.json))
$(eval $(call wasm-as,conformance,$(AS_DIR)/conformance/conformance.ts,$(AS_DIR)/conformance/manifest.json))
$(eval $(call wasm-as,platform,$(AS_DIR)/platform/platform.ts,$(AS_DIR)/platform/manifest.json))
$(eval $(call wasm-as,two_person,$(WASM)/assemblyscript/two_person.ts,$(WASM)/assemblyscript/manifest.json))
$(eval $(call wasm-rust,conformance,sdk/rust/conformance/conformance.rs,sdk/rust/conformance/manifest.json))
$(eval $(call wasm-rust,platform,sdk/rust/platform/platform.rs,sdk/rust/platform/manifest.json))
$(eval $(call wasm-rust,prod_guard,$(WASM)/rust/prod_guard.rs,$(WASM)/rust/manifest.json))
$(eval $(call wasm-wat,conformance,sdk/wat/conformance/conformance.wat,sdk/wat/conformance/manifest.json))
$(eval $(call wasm-wat,agent_no_approve,$(WASM)/wat/agent_no_approve.wat,$(WASM)/wat/manifest.json))
$(eval $(call wasm-wat,inactive_guard,$(WASM)/wat/inactive_guard.wat,$(WASM)/wat/inactive_guard.json))
$(eval $(call wasm-wat,template,sdk/wat/template.wat,sdk/wat/manifest.json))
