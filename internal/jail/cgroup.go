package jail

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted, reading a
// /proc/PID/mountinfo: /sys/fs/cgroup on a host with only cgroup v2,
// often /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(mountinfo io.Reader) (string, error) {
	sc := bufio.NewScanner(mountinfo)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		left, right, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		lf, rf := strings.Fields(left), strings.Fields(right)
		if len(lf) >= 5 && len(rf) >= 1 && rf[0] == "cgroup2" {
			return unescapeMountinfo(lf[4]), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("read mountinfo: %w", err)
	}
	return "", errors.New("no cgroup v2 hierarchy is mounted (tern jail supports cgroup v2 only; mount one with mount -t cgroup2 none /sys/fs/cgroup)")
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for a space)
// in a mountinfo path.
func unescapeMountinfo(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, ok := octal3(s[i+1 : i+4]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal3(s string) (byte, bool) {
	if len(s) != 3 {
		return 0, false
	}
	v := 0
	for _, c := range s {
		if c < '0' || c > '7' {
			return 0, false
		}
		v = v*8 + int(c-'0')
	}
	return byte(v), v < 256
}

// cgroup is a jail's own cgroup v2, made by makeCgroup.
type cgroup struct {
	path string
	dir  *os.File // for clone3's CLONE_INTO_CGROUP
}

// makeCgroup makes the cgroup rel below the hierarchy mounted at mount,
// enabling in each cgroup above it the controllers the settings need,
// and writes the settings. An empty cgroup left by an earlier jail of the
// same id is reused; one that still holds processes is refused, since
// ids are meant to be unique.
func makeCgroup(mount, rel string, settings []CgroupSetting) (cg *cgroup, err error) {
	offered, err := readWords(filepath.Join(mount, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup v2 at %s: %w", mount, err)
	}
	var need []string
	for _, s := range settings {
		ctrl, _, _ := strings.Cut(s.File, ".")
		if ctrl == "cgroup" || slices.Contains(need, ctrl) {
			continue
		}
		if !slices.Contains(offered, ctrl) {
			return nil, fmt.Errorf("--cgroup %s=%s: the cgroup v2 hierarchy at %s has no %s controller (it offers: %s); on a hybrid host it may be bound to cgroup v1",
				s.File, s.Value, mount, ctrl, strings.Join(offered, " "))
		}
		need = append(need, ctrl)
	}
	leaf := filepath.Join(mount, rel)
	parent := filepath.Dir(leaf)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("parent cgroup: %w", err)
	}
	// A controller's files appear in a cgroup only when every cgroup
	// above it delegates the controller (cgroup.subtree_control).
	dir := mount
	for _, part := range strings.Split(path.Dir(rel), "/") {
		if err := enableControllers(dir, need); err != nil {
			return nil, err
		}
		dir = filepath.Join(dir, part)
	}
	if err := enableControllers(dir, need); err != nil {
		return nil, err
	}
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("cgroup: %w", err)
	}
	procs, err := readWords(filepath.Join(leaf, "cgroup.procs"))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", leaf, err)
	}
	if len(procs) > 0 {
		return nil, fmt.Errorf("cgroup %s already holds processes (%s): is a jail with this id running?", leaf, strings.Join(procs, " "))
	}
	cg = &cgroup{path: leaf}
	defer func() {
		if err != nil {
			cg.remove()
		}
	}()
	for _, s := range settings {
		if err := writeCgroupFile(leaf, s); err != nil {
			return cg, err
		}
	}
	cg.dir, err = os.OpenFile(leaf, os.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return cg, fmt.Errorf("cgroup: %w", err)
	}
	return cg, nil
}

func enableControllers(dir string, need []string) error {
	if len(need) == 0 {
		return nil
	}
	file := filepath.Join(dir, "cgroup.subtree_control")
	have, err := readWords(file)
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	for _, c := range need {
		if slices.Contains(have, c) {
			continue
		}
		if err := writeExisting(file, "+"+c); err != nil {
			return fmt.Errorf("cgroup: enable the %s controller below %s: %w", c, dir, err)
		}
	}
	return nil
}

func writeCgroupFile(dir string, s CgroupSetting) error {
	p := filepath.Join(dir, s.File)
	if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("--cgroup %s=%s: cgroup %s has no file %s", s.File, s.Value, dir, s.File)
	}
	if err := writeExisting(p, s.Value); err != nil {
		return fmt.Errorf("--cgroup %s=%s: %w", s.File, s.Value, err)
	}
	return nil
}

// writeExisting writes s to a file that must already exist, as cgroup
// files do; one write, since each write to a cgroup file is one command.
func writeExisting(path, s string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(s)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", s, path, err)
	}
	return nil
}

func readWords(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(b)), nil
}

// remove removes the cgroup. The kernel refuses (EBUSY) while a process
// is in it; one that has just been reaped may still count for a moment.
func (cg *cgroup) remove() error {
	if cg == nil {
		return nil
	}
	if cg.dir != nil {
		cg.dir.Close()
		cg.dir = nil
	}
	var err error
	for range 50 {
		if err = unix.Rmdir(cg.path); err != unix.EBUSY {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil && err != unix.ENOENT {
		return fmt.Errorf("remove cgroup %s: %w", cg.path, err)
	}
	return nil
}
