package benchproc

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/test/fixture"
)

// Announce prints a bench's first line: which machine and which KVM its
// figures come from. It returns the backend, so that a bench without a
// /dev/kvm can say so and stop.
func Announce(bench string) kvm.Backend {
	be := kvm.DetectBackend("/dev/kvm")
	fmt.Printf("BENCH %s on this machine's own /dev/kvm: backend=%q cpu=%q cpus=%d date=%s\n",
		bench, be.String(), CPUModel(), runtime.NumCPU(), time.Now().UTC().Format(time.RFC3339))
	return be
}

// CPUModel is the host CPU's model name from /proc/cpuinfo.
func CPUModel() string {
	raw, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// OneLine is err's text on one line, for a BENCH-ERROR line.
func OneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// Tern returns the absolute path of the tern binary to measure: ternBin,
// or, when it is empty, ./cmd/tern built static into dir.
func Tern(ctx context.Context, dir, ternBin string) (string, error) {
	if ternBin == "" {
		ternBin = filepath.Join(dir, "tern")
		bctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		defer cancel()
		if err := fixture.BuildStatic(bctx, "", "github.com/ternvm/tern/cmd/tern", ternBin); err != nil {
			return "", fmt.Errorf("build tern: %w", err)
		}
	}
	return filepath.Abs(ternBin)
}
