package nested

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/ternvm/tern/test/fixture"
)

// hostTools are programs from this machine that scenarios run inside the
// test host, where busybox lacks them: debugfs reads files out of an ext4
// image without mounting it.
var hostTools = []string{"debugfs"}

// AddHostTool copies a dynamically linked program of this machine into the
// test host's tree at the same path, with the shared libraries ldd names
// (and the dynamic loader), so it runs there as it does here.
func AddHostTool(t *fixture.Tree, name string) error {
	bin, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s is needed inside the test host: install it (`make deps`): %w", name, err)
	}
	bin, err = filepath.EvalSymlinks(bin)
	if err != nil {
		return err
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		return fmt.Errorf("ldd %s: %w", bin, err)
	}
	t.HostFile(bin, 0o755, bin)
	for _, line := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or
		// "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
		fields := strings.Fields(line)
		lib := ""
		switch {
		case len(fields) >= 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "/"):
			lib = fields[2]
		case len(fields) >= 1 && strings.HasPrefix(fields[0], "/"):
			lib = fields[0]
		}
		if lib == "" {
			continue
		}
		real, err := filepath.EvalSymlinks(lib)
		if err != nil {
			return fmt.Errorf("library %s of %s: %w", lib, bin, err)
		}
		t.HostFile(lib, 0o755, real)
	}
	return nil
}
