# tern: build, check and test. `make test` is what CI runs (.ci/run).
GO ?= go
export CGO_ENABLED := 0

# Host tools the end-to-end harness (see test/nested, test/fixture) and the
# hand-written test guests (test/tinyguest: as, ld) need.
DEPS_PACKAGES := qemu-system-x86 busybox-static cpio e2fsprogs binutils
# What each package provides, to tell whether it is installed.
DEPS_TOOLS := qemu-system-x86_64 busybox cpio mke2fs as ld

.PHONY: all build deps test unit e2e vet demo bench fuzz-seeds clean

all: vet build unit

build:
	$(GO) build -o bin/tern ./cmd/tern

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

# Unit tests: every package except the end-to-end tests.
unit:
	$(GO) test $$($(GO) list ./... | grep -v '/test/e2e$$')

e2e:
	$(GO) test -v -count=1 -timeout 25m ./test/e2e/

vet:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: not formatted:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

demo: deps
	$(GO) run ./test/cmd/demo

# The nested host's memory and snapshot figures, then live migration on
# this machine's own /dev/kvm beside QEMU (test/cmd/migbench).
bench: deps
	$(GO) run ./test/cmd/bench
	$(GO) run ./test/cmd/migbench

# A short run of each fuzz target, seeds first.
fuzz-seeds:
	$(GO) test -run '^$$' -fuzz FuzzDecompressLZ4Legacy -fuzztime 20s ./test/fixture/
	$(GO) test -run '^$$' -fuzz FuzzReadState -fuzztime 20s ./migrate/snapshot/
	$(GO) test -run '^$$' -fuzz FuzzReceive -fuzztime 20s ./migrate/

clean:
	rm -rf bin
