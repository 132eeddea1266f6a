# tern: build, check and test. `make test` is what CI runs (.ci/run).
GO ?= go
export CGO_ENABLED := 0

# Host tools the end-to-end harness (see test/nested, test/fixture) and the
# hand-written test guests (test/tinyguest: as, ld) need.
DEPS_PACKAGES := qemu-system-x86 busybox-static cpio e2fsprogs binutils
# What each package provides, to tell whether it is installed.
DEPS_TOOLS := qemu-system-x86_64 busybox cpio mke2fs as ld

.PHONY: all build deps test unit e2e vet demo bench fuzz-seeds fuzz clean

all: vet build unit

# urfave_cli_no_docs: see test/fixture.BuildTags.
build:
	$(GO) build -tags urfave_cli_no_docs -o bin/tern ./cmd/tern

deps:
	@missing=; for t in $(DEPS_TOOLS); do command -v $$t >/dev/null 2>&1 || missing=1; done; \
	for t in apt-get apt-cache dpkg-deb; do command -v $$t >/dev/null 2>&1 || { echo "deps: $$t not found: the harness needs a Debian-like host" >&2; exit 1; }; done; \
	if [ -n "$$missing" ]; then \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $(DEPS_PACKAGES); \
	else \
		echo "deps: $(DEPS_PACKAGES) already installed"; \
		apt-cache show linux-image-cloud-amd64 >/dev/null 2>&1 || { SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; $$SUDO apt-get update; }; \
	fi

test: deps unit e2e

# Unit tests: every package except the end-to-end tests, then the
# Firecracker Go SDK driving tern (test/fcsdk, a module of its own so that
# tern's go.mod does not carry the SDK's dependencies).
unit:
	$(GO) test $$($(GO) list ./... | grep -v '/test/e2e$$')
	cd test/fcsdk && $(GO) test ./...

e2e:
	$(GO) test -v -count=1 -timeout 25m ./test/e2e/

vet:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd test/fcsdk && $(GO) vet ./...

demo: deps
	$(GO) run ./test/cmd/demo

# The nested host's memory and snapshot figures, then live migration on
# this machine's own /dev/kvm beside QEMU (test/cmd/migbench), then
# start-up, start rate, idle memory and restore latency on the same
# /dev/kvm (test/cmd/startbench), then snapshots of idle, busy and
# changing guests against a plain file write (test/cmd/snapbench). Each
# runs even if one before it failed (the nested host's emulator now and
# then crashes a guest); make bench fails if any did.
BENCHES := bench migbench startbench snapbench
bench: deps
	@failed=; for b in $(BENCHES); do $(GO) run ./test/cmd/$$b || failed="$$failed $$b"; done; \
	if [ -n "$$failed" ]; then echo "make bench: failed:$$failed"; exit 1; fi

# Fuzz targets, as package:Name. Every guest-, file- or client-facing
# parser has one (see DESIGN.md, "Guest-facing input is hostile"); a
# crasher found is fixed and kept in the package's testdata/fuzz as a
# regression seed. Plain `go test` (so `make unit`) already runs every
# target's seeds and kept crashers once; these targets mutate beyond them.
FUZZ_TARGETS := \
	./boot:FuzzLoadKernel \
	./boot/cputemplate:FuzzCustomTemplate \
	./cmd/tern:FuzzDevSpec \
	./cmd/tern:FuzzParseOverrides \
	./cmd/tern:FuzzParseSize \
	./internal/cpuidcache:FuzzDecode \
	./devices:FuzzBus \
	./devices:FuzzLegacyPIO \
	./devices:FuzzSerial \
	./devices:FuzzStateJSON \
	./migrate:FuzzReadSnapshot \
	./migrate:FuzzReceive \
	./mmds:FuzzIntercept \
	./mmds:FuzzParseRequest \
	./mmds:FuzzStore \
	./mmds:FuzzTCPSession \
	./migrate/snapshot:FuzzMergeDiff \
	./migrate/snapshot:FuzzReadState \
	./migrate/snapshot:FuzzStateRoundTrip \
	./test/fixture:FuzzDecompressLZ4Legacy \
	./virtio:FuzzQueuePop \
	./virtio/balloon:FuzzConfig \
	./virtio/balloon:FuzzDeflate \
	./virtio/balloon:FuzzInflate \
	./virtio/balloon:FuzzStateJSON \
	./virtio/balloon:FuzzStats \
	./virtio/block:FuzzRequest \
	./virtio/mmio:FuzzMMIOTransport \
	./virtio/mmio:FuzzRestoreJSON \
	./virtio/net:FuzzRxPlace \
	./virtio/net:FuzzStateJSON \
	./virtio/net:FuzzTxChain \
	./virtio/rng:FuzzRequest \
	./virtio/vsock:FuzzReadConnect \
	./virtio/vsock:FuzzSession \
	./virtio/vsock:FuzzTxPacket \
	./vmm/api:FuzzHandler \
	./vmm/fcapi:FuzzAPIBodies \
	./vmm/fcapi:FuzzApplyConfig

# How long each target fuzzes: fuzz-seeds is the short pass (about 5
# minutes for all), fuzz the longer one. FUZZFLAGS passes extra flags to
# go test, e.g. FUZZFLAGS=-parallel=2 on a shared machine.
FUZZSEEDTIME ?= 10s
FUZZTIME ?= 60s
FUZZFLAGS ?=

# go test -fuzz takes one target of one package at a time, hence the loop;
# it stops at the first target that finds a crasher.
run-fuzz = for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t\#\#*:}; \
		echo "fuzz: $$pkg $$name ($(1))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(1) $(FUZZFLAGS) $$pkg || exit 1; \
	done

# fuzz-seeds: each target's seeds, then FUZZSEEDTIME of fuzzing; a quick
# check that every target still runs and finds nothing easy.
fuzz-seeds:
	@$(call run-fuzz,$(FUZZSEEDTIME))

# fuzz: each target for FUZZTIME (60s by default: about half an hour).
fuzz:
	@$(call run-fuzz,$(FUZZTIME))

clean:
	rm -rf bin
