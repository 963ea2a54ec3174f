# iap_ha_exporter: the common targets. `make test` is what CI runs.
GO        ?= go
BIN       := iap_ha_exporter
PKGS      := ./...
TOOLS     := $(GO) run -modfile=tools/go.mod
# Inputs each fuzz target tries inside `make test` (seed corpora always run).
# A count, not a duration: with -fuzztime=3s Go 1.26's coordinator can fail a
# target with a bare "context deadline exceeded" when a starved worker is
# still mid-input at the deadline (golang/go#75804, fixed in Go 1.27).
FUZZTIME  ?= 10000x
# `make fuzz` tries this many inputs per target (a few minutes each).
LONGFUZZ  ?= 1000000x

.PHONY: all build static package image chart tools test unit stress-test fuzz-short fuzz lint bench demo demo-down demo-iap e2e soak screenshot dashboards clean

all: lint build test

VERSION   := $(shell cat VERSION)
REVISION  := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS   := -X github.com/prometheus/common/version.Version=$(VERSION) \
             -X github.com/prometheus/common/version.Revision=$(REVISION) \
             -X github.com/prometheus/common/version.Branch=main

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/iap_ha_exporter

# The static linux/amd64 binary that the packages and the image carry.
STATIC    := .build/linux-amd64/$(BIN)
PKGDIR    ?= .build/packages
IMAGE     ?= iap_ha_exporter:$(VERSION)

static:
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -tags netgo -ldflags "$(LDFLAGS)" -o $(STATIC) ./cmd/iap_ha_exporter

# The release tarball, .deb and .rpm in $(PKGDIR) (packaging/, nfpm from tools/go.mod).
package: static
	GO="$(GO)" ./scripts/package.sh $(STATIC) $(PKGDIR)

# The container image (Containerfile) with podman.
image: static
	./scripts/image.sh $(STATIC) $(IMAGE)

# The Helm chart (deploy/helm/iap-ha-exporter), linted and packaged into
# $(CHARTDIR) with the version in VERSION. Helm is built from
# tools/helm/go.mod: the first build takes minutes.
HELM      := .build/tools/helm
CHARTDIR  ?= .build/charts

chart:
	GO="$(GO)" ./scripts/build-tools.sh helm
	$(HELM) lint --strict deploy/helm/iap-ha-exporter
	$(HELM) package --version $(VERSION) --app-version $(VERSION) -d $(CHARTDIR) deploy/helm/iap-ha-exporter

# The tools the tests need that Debian does not package (helm, promtool
# 3.x), built first and aloud: inside `go test` a first build of minutes
# would pass in silence.
tools:
	GO="$(GO)" ./scripts/build-tools.sh

# Unit and integration tests (the integration tests start the real Redis,
# Sentinel, RabbitMQ, Prometheus and Alertmanager lab and install it when
# missing), then a short run of every fuzz target.
test: unit fuzz-short

unit: tools
	$(GO) test -count=1 -timeout 25m $(PKGS)

# The unit tests (fuzz seeds included) with every core taken by stress-ng,
# as on a busy CI machine; stress-ng stops when they end, pass or fail.
# make stress-test PKGS=./remediation/ STRESSFLAGS=-count=3
STRESSFLAGS ?=
stress-test:
	PKGS='$(PKGS)' TESTFLAGS='$(STRESSFLAGS)' ./scripts/stress-test.sh

fuzz-short:
	FUZZTIME=$(FUZZTIME) ./scripts/fuzz.sh

fuzz:
	FUZZTIME=$(LONGFUZZ) ./scripts/fuzz.sh

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet $(PKGS)
	$(TOOLS) honnef.co/go/tools/cmd/staticcheck $(PKGS)

# Go benchmarks, then the scrape-cost harness (PERFORMANCE.md). The harness
# starts the HA-6 lab; on a small machine: make bench BENCHFLAGS='-sim-only -scrapes 100'
# -estates 100 adds issue 25's many-estates scenario (100 simulated HA-6 estates
# every 15 s, one exporter against one process per estate, a hung estate, 1,000
# reload rounds; 20-30 min, 3 GiB). Alone:
#   go run ./fixtures/bench/cmd/scrapebench -estates 100 -estates-only
# Quick try: ... -estates 20 -estates-only -estates-interval 2s -estates-rounds 3 -estates-reloads 20
BENCHFLAGS ?= -queues 1000,10000 -estates 100

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	GO=$(GO) $(GO) run ./fixtures/bench/cmd/scrapebench $(BENCHFLAGS)

demo: build
	./scripts/demo.sh

demo-down:
	./scripts/demo.sh down

# IAP alone: iapsim's HA-6 servers and the exporter against them, no lab.
demo-iap: build
	./scripts/demo-iap.sh

# Regenerate the Grafana dashboards (dashboards/*.json) from dashboards/*.go;
# `make test` fails while the committed JSON and the code disagree.
dashboards:
	$(GO) run ./dashboards/generate -out dashboards

# The chaos soak at full length (`make test` runs it for 2 minutes).
SOAKTIME ?= 30m
soak:
	SOAK_DURATION=$(SOAKTIME) $(GO) test -count=1 -v -timeout 60m -run '^TestSoak$$' ./fixtures/soak

# The end-to-end test alone: the HA-6 lab, real Prometheus and Alertmanager,
# a real promotion (part of `make test`).
e2e:
	$(GO) test -count=1 -run 'TestEndToEnd|TestHAModelOnTheLab' ./fixtures/estate/

# The README's picture: the topology page of a running `make demo`, in
# headless Chromium.
screenshot:
	./scripts/screenshot.sh docs/topology.png

clean:
	rm -f $(BIN)
	rm -rf .build
	$(GO) clean -testcache
