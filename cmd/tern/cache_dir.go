package main

import (
	"os"
	"path/filepath"
	"sync"

	"github.com/urfave/cli/v2"
)

// defaultCacheDir is where tern keeps what it learns of the host between
// runs (vmm.Config.HostCacheDir), for this process.
var defaultCacheDir = sync.OnceValue(func() string {
	return cacheDirFor(os.Geteuid(), os.Getenv("XDG_RUNTIME_DIR"), func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.IsDir()
	})
})

// cacheDirFor is /run/tern for root and $XDG_RUNTIME_DIR/tern for other
// users (both memory file systems, emptied at boot), or none where that
// base directory does not exist.
func cacheDirFor(euid int, xdgRuntimeDir string, isDir func(string) bool) string {
	base := "/run"
	if euid != 0 {
		base = xdgRuntimeDir
	}
	if base == "" || !isDir(base) {
		return ""
	}
	return filepath.Join(base, "tern")
}

// cacheDirFlag is --cache-dir of the commands that start a guest.
func cacheDirFlag() cli.Flag {
	return &cli.StringFlag{Name: "cache-dir", Value: defaultCacheDir(), Usage: `directory where tern keeps KVM's supported CPUID between runs, so that later starts need not ask KVM again; it must be this user's and writable by no one else ("" for none)`}
}
