# Cairn. `make run` starts the engine with a sample graph; `make test` runs
# the whole suite (installing what is missing first).
SHELL := /bin/bash
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
DATA ?= .cairn
PKGS := ./...

.PHONY: run test proto check-proto vet unit viewer-test bench deps sysdeps build build-k8s clean

# The viewer (cairn view) is the one cgo part: it is built with the tags
# below and needs EGL, GL and GLFW's X headers. Every other package builds
# and tests with CGO_ENABLED=0.
VIEWER_TAGS := viewer,egl
VIEWER_PKGS := ./viewer/...

build: sysdeps
	CGO_ENABLED=1 $(GO) build -tags $(VIEWER_TAGS) -o bin/cairn ./cmd/cairn

# build-k8s builds cairn with the Kubernetes membership provider (serve
# --cluster-provider k8s), which links client-go; the default binary has
# only the NATS KV provider. K8S_PKGS are the packages with k8s-tagged
# files: vet and unit build and test them with the tag too, so that it
# cannot rot.
K8S_PKGS := ./cluster ./cmd/cairn
build-k8s:
	CGO_ENABLED=0 $(GO) build -tags k8s -o bin/cairn-k8s ./cmd/cairn

run: build
	./bin/cairn serve --data $(DATA) --sample

# sysdeps installs the Debian packages the viewer builds and runs with when
# they are missing: EGL and GL (Mesa's llvmpipe renders without a GPU), GLFW's
# X headers (GLFW's C is compiled from the Go module), Xvfb for the window
# test, ffmpeg for recording, and a font for labels.
VIEWER_DEBS := gcc libc6-dev pkg-config libegl-dev libgl-dev libegl-mesa0 libgl1-mesa-dri \
	libx11-dev libxrandr-dev libxinerama-dev libxcursor-dev libxi-dev libxxf86vm-dev \
	xvfb xauth ffmpeg
sysdeps:
	@command -v $(GO) >/dev/null || { echo "make: Go is required (https://go.dev/dl)"; exit 1; }
	@missing=$$(for p in $(VIEWER_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing || \
			{ echo "make: could not install $$missing with apt-get (the viewer needs them)"; exit 1; }; \
	fi

# OBS_DEBS are the monitoring tools the deploy package's tests run:
# Prometheus's server (a real scrape of cairn serve) and promtool (the alert
# rules' unit tests), both in Debian's prometheus package.
OBS_DEBS := prometheus

# deps installs what the suite needs and is missing. Go modules come from the
# module proxy; system packages from apt: the viewer's (sysdeps), PostgreSQL's
# server, which the peer benchmark (cairn bench peer) and its tests run beside
# the engine, curl, which the operations manual's blocks
# (TestOperationsManual) run against serve's metrics listener, and OBS_DEBS.
deps: sysdeps
	@command -v git >/dev/null || { echo "installing git"; apt-get update -qq && apt-get install -y -qq git; }
	@command -v curl >/dev/null || { echo "installing curl"; apt-get update -qq && apt-get install -y -qq curl; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || { echo "installing postgresql"; apt-get update -qq && apt-get install -y -qq postgresql; }
	@missing=$$(for p in $(OBS_DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing" $$missing; \
		if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing || \
			{ echo "make: could not install $$missing with apt-get (the deploy tests run prometheus and promtool)"; exit 1; }; \
	fi
	$(GO) mod download
	cd tools && $(GO) mod download

test: deps check-proto vet unit viewer-test

unit:
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 12m $(PKGS)
	CGO_ENABLED=0 $(GO) test -count=1 -tags k8s -run 'K8s' $(K8S_PKGS)

# viewer-test runs the viewer's GL tests (headless EGL renders against golden
# images, picking, a window under Xvfb) and cairn view's own tests, with cgo.
# With CI set, a missing GL, EGL or display fails them instead of skipping.
viewer-test:
	CGO_ENABLED=1 xvfb-run -a -s '-screen 0 1280x1024x24' $(GO) test -count=1 -timeout 10m -tags $(VIEWER_TAGS) $(VIEWER_PKGS)
	CGO_ENABLED=1 xvfb-run -a -s '-screen 0 1280x1024x24' $(GO) test -count=1 -timeout 10m -tags $(VIEWER_TAGS) -run 'TestView' ./cmd/cairn

vet:
	CGO_ENABLED=0 $(GO) vet $(PKGS)
	CGO_ENABLED=0 $(GO) vet -tags k8s $(K8S_PKGS)
	CGO_ENABLED=1 $(GO) vet -tags $(VIEWER_TAGS) $(VIEWER_PKGS) ./cmd/cairn
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

proto:
	$(BUF) generate

# check-proto fails when the committed generated code is stale, when buf lint
# fails, or when the schemas break wire compatibility with main.
check-proto:
	$(BUF) lint
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	$(BUF) generate -o $$tmp && \
	diff -r -x '*.proto' -x doc.go $$tmp/messages messages >/dev/null || { echo "make: generated code in messages/ is stale: run 'make proto' and commit"; diff -r -x '*.proto' -x doc.go $$tmp/messages messages | head -20; exit 1; }
	@if git rev-parse --verify -q main >/dev/null && git cat-file -e main:buf.yaml 2>/dev/null; then \
		$(BUF) breaking --against '.git#branch=main'; fi

# bench runs the standard load-test suite with the harness (cairn bench
# suite: ingest of 1,000,000 nodes and 3,000,000 edges, mixed load at 10,000
# events/s, kill -9 recovery of that graph, replay) and writes its report to
# $(BENCH_OUT) (report.md, report.json, plots; about 7 minutes on the 2-core
# reference machine, the engine under 2 GB), then every Go benchmark, the
# read-side ones on small graphs. After the suite, cairn bench peer sets the
# engine beside a throwaway PostgreSQL on 100,000 nodes and 300,000 edges
# (about 2 minutes, up to 1 GB) and writes its report to $(BENCH_OUT)/peer;
# cairn bench chaos kills members of a 3-member cluster every 20 s on
# average for 5 minutes and writes $(BENCH_OUT)/chaos, then again with 3
# separate NATS nodes (cairn nats-node) under the 3 members, killing
# members, nodes and the event stream's leader every 10 s on average for
# 5 minutes, and writes $(BENCH_OUT)/chaos-nats; cairn bench
# failover runs the four faults of issue 13 (about 2 minutes) and writes
# $(BENCH_OUT)/failover; cairn bench scale
# runs 1 member (replicas 1), 3 members with replicas 1 and 3 members with
# replicas 3, 20 s each, and writes $(BENCH_OUT)/scale-1, scale-3r1 and
# scale-3 (about 3 minutes); then the write core's state on 1,000,000 nodes and 3,000,000 edges:
# bytes per node and per edge, snapshot encode and decode times (about 4
# minutes, aggregate-bench.out); then the viewer's frame, export, layout
# and scene benchmarks (headless llvmpipe against a bare draw of the same
# buffers, about 3 minutes, viewer-bench.out). BIG=1 then runs
# the read model and projection ones again on 1,000,000 nodes and 3,000,000
# edges (about 25 minutes more, up to 2 GB of memory).
BENCH_OUT ?= docs/bench
bench: deps build
	./bin/cairn bench suite --out $(BENCH_OUT)
	./bin/cairn bench peer --out $(BENCH_OUT)/peer
	./bin/cairn bench chaos --members 3 --duration 5m --kill-every 20s --out $(BENCH_OUT)/chaos
	./bin/cairn bench chaos --members 3 --nats 3 --duration 5m --kill-every 10s --out $(BENCH_OUT)/chaos-nats
	./bin/cairn bench failover --out $(BENCH_OUT)/failover
	./bin/cairn bench scale --members 1 --duration 20s --concurrency 32 --out $(BENCH_OUT)/scale-1
	./bin/cairn bench scale --members 3 --replicas 1 --duration 20s --concurrency 32 --out $(BENCH_OUT)/scale-3r1
	./bin/cairn bench scale --members 3 --duration 20s --concurrency 32 --out $(BENCH_OUT)/scale-3
	$(GO) test ./aggregate -run '^$$' -bench 'StateMemory|Codec' -benchtime 1x -count 3 -timeout 30m -aggregate.big | tee aggregate-bench.out
	CGO_ENABLED=1 xvfb-run -a $(GO) test -tags $(VIEWER_TAGS) -run '^$$' -bench . -timeout 30m ./viewer/ | tee viewer-bench.out
	$(GO) test -run '^$$' -bench . -count 3 -timeout 30m ./viewer/layout ./viewer/scene | tee -a viewer-bench.out
	GODEBUG=madvdontneed=0 $(GO) test -run '^$$' -bench . -benchmem -count 3 -timeout 60m $(PKGS) | tee bench.out
	@if [ -n "$(BIG)" ]; then set -o pipefail; \
		$(GO) test ./readmodel -run '^$$' -bench BigGraph -benchtime 20000x -count 3 -timeout 60m -readmodel.big | tee -a bench.out && \
		$(GO) test ./actors -run '^$$' -bench 'Projection$$' -benchtime 3s -count 3 -timeout 60m -actors.big | tee -a bench.out && \
		$(GO) test ./actors -run '^$$' -bench 'ProjectionCatchUp' -benchtime 1x -count 3 -timeout 60m -actors.big | tee -a bench.out && \
		$(GO) test ./readmodel -run '^$$' -bench 'Snapshot' -benchtime 3x -timeout 60m -readmodel.big | tee -a bench.out && \
		$(GO) test ./actors -run '^$$' -bench 'SnapshotWrite' -benchtime 1x -timeout 60m -actors.big | tee -a bench.out && \
		$(GO) test ./cmd/cairn -run '^$$' -bench 'ServeRestart' -benchtime 3x -timeout 60m -cairn.big | tee -a bench.out && \
		$(GO) test . -run '^$$' -bench 'AuthzCheck' -benchtime 1x -timeout 60m -authz.tuples 1000000 | tee -a bench.out; fi

clean:
	rm -rf bin $(DATA) bench.out aggregate-bench.out viewer-bench.out
