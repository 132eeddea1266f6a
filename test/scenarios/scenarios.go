// Package scenarios holds the end-to-end scenario scripts. Each is a POSIX
// sh script that runs "$TERN" (under busybox sh in the nested test host, or
// sh directly), checks the results itself, prints one line
// "SCENARIO-CHECK ok <what>" or "SCENARIO-CHECK FAIL <what>" per check, and
// exits non-zero when a check failed. lib.sh holds their shared helpers.
//
// A script finds in its environment: TERN (the binary under test),
// KERNEL_BZIMAGE and KERNEL_ELF (the same stock kernel as bzImage and as
// ELF vmlinux), INITRD (the test guest's initramfs), OUT (a scratch
// directory), SCENARIO_DIR (where the scripts are) and AGENT (the test
// agent, which also runs in the guest: the host-side peer of its vsock and
// network exchanges).
//
// Some scenarios are the two halves of a pair (migrate-hosts-src.sh and
// migrate-hosts-dst.sh), run at once on two test hosts joined by a network
// (see nested.RunPair): each finds LINK_ADDR, its own address on that
// network, and LINK_PEER, the other host's; the test that runs the pair
// adds what both need (the TLS certificates) to the scenario directory.
package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:embed *.sh
var scripts embed.FS

// Files returns every script by name, to be given to a job as its
// scenario directory; extra files (e.g. a runner's own script) are added.
func Files(extra map[string][]byte) (map[string][]byte, error) {
	files := map[string][]byte{}
	names, err := fs.Glob(scripts, "*.sh")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		b, err := scripts.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files[n] = b
	}
	for n, b := range extra {
		if _, ok := files[n]; ok {
			return nil, fmt.Errorf("scenario file %s given twice", n)
		}
		files[n] = b
	}
	return files, nil
}

// Names lists the scenarios (every script but lib.sh).
func Names() []string {
	names, _ := fs.Glob(scripts, "*.sh")
	out := names[:0]
	for _, n := range names {
		if n != "lib.sh" {
			out = append(out, n)
		}
	}
	return out
}
