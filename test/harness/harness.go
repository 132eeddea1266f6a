// Package harness is the set-up every end-to-end runner shares (the e2e
// tests, the demo, the bench): fixtures from the cache, tern built from the
// tree, and the backend that runs a scenario where KVM guests can run.
package harness

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ternvm/tern/test/fixture"
	"github.com/ternvm/tern/test/nested"
)

// TernPackage is what is built as the binary under test.
const TernPackage = "./cmd/tern"

// Env is a prepared harness.
type Env struct {
	Fixture *fixture.Fixture
	Tern    string // the freshly built tern binary
	Backend nested.Backend
}

// Prepare ensures the fixtures (in $TERN_CACHE or <repo>/.cache), builds
// tern into binDir and chooses the backend.
func Prepare(ctx context.Context, binDir string) (*Env, error) {
	cache, err := fixture.CacheDir()
	if err != nil {
		return nil, err
	}
	fx, err := fixture.Ensure(ctx, cache)
	if err != nil {
		return nil, fmt.Errorf("fixtures: %w", err)
	}
	root, err := fixture.RepoRoot()
	if err != nil {
		return nil, err
	}
	tern := filepath.Join(binDir, "tern")
	if err := fixture.BuildStatic(ctx, root, TernPackage, tern); err != nil {
		return nil, err
	}
	b, err := nested.Choose(fx)
	if err != nil {
		return nil, err
	}
	return &Env{Fixture: fx, Tern: tern, Backend: b}, nil
}
