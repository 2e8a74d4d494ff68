# lantel — see README.md. `make demo` and `make test` are the two set-up
# commands; everything else is for developers.
GO      ?= go
BIN     ?= bin
PKGS    := ./...
FUZZTIME ?= 30s

.PHONY: all build test test-short lint fuzz soak bench bench-go bench-ltnp bench-dhcp bench-dhcp6 bench-sip bench-dns bench-scale demo clean deps

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# What the tests use beyond Go: Debian packages (as root; see contrib/deps.sh).
deps:
	$(GO) mod download
	./contrib/deps.sh test

test: deps
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) test -race -count=1 -timeout 15m $(PKGS)
	GO=$(GO) ./contrib/test-etcd.sh

test-short:
	$(GO) test -short -count=1 $(PKGS)

GOLANGCI ?= github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0

# golangci-lint with the explicit list of .golangci.yml (fetched by go run).
lint:
	$(GO) vet $(PKGS)
	$(GO) run $(GOLANGCI) run ./...

# Every fuzz target, FUZZTIME each.
fuzz:
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./contrib/fuzz.sh

# Fault injection, the long version (root): SOAK_CYCLES SIGKILLs of lanteld
# under LTNP and relayed DHCP load, every acknowledged binding checked after
# each restart. `make test` runs 3 cycles of the same test.
SOAK_CYCLES ?= 100
soak:
	LANTEL_SOAK_CYCLES=$(SOAK_CYCLES) $(GO) test -count=1 -timeout 60m -run '^TestFaultInjection$$' -v ./cmd/lanteld/

# Benchmarks: Go micro-benchmarks, then the load generators against real
# servers (see docs/performance.md).
bench: bench-go bench-ltnp bench-dhcp bench-sip bench-dns

bench-go:
	$(GO) test -run '^$$' -bench . -benchtime 2s -count 3 ./numbering/... ./ltnp/... ./internal/...

bench-ltnp: build
	BIN=$(BIN) ./contrib/bench/ltnp.sh
	@if command -v taskset >/dev/null; then $(BIN)/ltnpbench -pin; fi

demo: build
	./contrib/demo.sh

clean:
	rm -rf $(BIN)

# DHCP: lanteld against Kea 2.2 with perfdhcp in namespaces (root).
bench-dhcp: build
	./contrib/bench/dhcp.sh

bench-dhcp6: build
	./contrib/bench/dhcp6.sh

bench-sip: build
	./contrib/bench/sip.sh

bench-dns: build
	./contrib/bench/dns.sh

# 1k and 100k numbers and leases: start-up, RSS, rates (DORA too, as root), SIGTERM (a table).
bench-scale:
	GO=$(GO) ./contrib/bench/scale.sh
