package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternvm/tern/test/fixture"
)

// TestFirecrackerSDK: the Firecracker Go SDK (v1.0.0, test/fcsdk's
// module) drives tern with a stock kernel in the test host, through a
// small static program (test/fcsdk/cmd/sdklife) that the scenario
// fcsdk.sh runs step by step: boot with a root drive, a TAP and vsock,
// pause, snapshot, resume, shutdown, and a load of the snapshot in a
// fresh tern whose guest goes on.
func TestFirecrackerSDK(t *testing.T) {
	root, err := fixture.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(binDir, "sdklife")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Built in its own module, which carries the SDK's dependencies.
	if err := fixture.BuildStatic(ctx, filepath.Join(root, "test", "fcsdk"), "./cmd/sdklife", bin); err != nil {
		t.Fatal(err)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	runScenarioWith(t, "fcsdk.sh", map[string][]byte{"sdklife": prog}, nil)
}
