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

.PHONY: all run build test test-short bench fuzz lint fmt tools clean

all: lint test

## run: start the engine with the embedded example policies (no config needed)
run:
	$(GO) run ./cmd/creto demo

## build: build the creto binary into bin/
build:
	$(GO) build -trimpath -o bin/creto ./cmd/creto

## test: vet, then every test with the race detector
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 $(PKGS)

## test-short: the quick subset, for the edit-compile loop
test-short:
	$(GO) test -short -count=1 $(PKGS)

## bench: benchmarks against the anchors (see bench/RESULTS.md)
bench:
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -count $(COUNT) ./bench/ ./engine/

## fuzz: run each fuzz target for FUZZTIME (not part of `make test`)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

## lint: gofmt, go vet and staticcheck must all be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) tool staticcheck $(PKGS)

## fmt: format the tree
fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin/
