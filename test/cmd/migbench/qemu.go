package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/ternvm/tern/test/benchproc"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// qemuBinary is QEMU as the project's deps install it.
const qemuBinary = "qemu-system-x86_64"

// qemuMaxBandwidth lifts QEMU's migration bandwidth limit (32 MiB/s by
// default in 7.2), so both monitors send as fast as loopback carries.
const qemuMaxBandwidth = 1 << 40

// qmpConn is a QMP session on QEMU's monitor socket: one command at a
// time, events skipped.
type qmpConn struct {
	c net.Conn
	r *bufio.Reader
}

// dialQMP connects to the QMP socket at path, waiting up to limit for
// QEMU to create it, and leaves command mode on.
func dialQMP(ctx context.Context, p *benchproc.Proc, path string, limit time.Duration) (*qmpConn, error) {
	var c net.Conn
	err := benchproc.Poll(ctx, p.Name+"'s QMP socket", limit, 20*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, errors.New("QEMU exited before its QMP socket opened")
		}
		var err error
		c, err = net.Dial("unix", path)
		return err == nil, nil
	})
	if err != nil {
		return nil, p.Failed(err)
	}
	q := &qmpConn{c: c, r: bufio.NewReader(c)}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := q.r.ReadBytes('\n'); err != nil { // the greeting
		c.Close()
		return nil, p.Failed(fmt.Errorf("QMP greeting: %w", err))
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		c.Close()
		return nil, p.Failed(err)
	}
	return q, nil
}

// do runs one QMP command and returns its return value; 10 s bound it,
// more than any of these commands takes (migrate itself returns at once).
func (q *qmpConn) do(cmd string, args any) (json.RawMessage, error) {
	q.c.SetDeadline(time.Now().Add(10 * time.Second))
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.c.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("QMP %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		msg, answer, err := parseQMPLine(line)
		if err != nil {
			return nil, fmt.Errorf("QMP %s: %w", cmd, err)
		}
		if answer {
			return msg.Return, nil
		}
	}
}

func (q *qmpConn) close() { q.c.Close() }

// qemuVM is one QEMU process with its QMP session.
type qemuVM struct {
	p      *benchproc.Proc
	qmp    *qmpConn
	serial string
}

// qemuSpec is what a QEMU side of a migration runs.
type qemuSpec struct {
	name     string
	kernel   string // the tiny guest's ELF, booted through its PVH note
	memory   string // QEMU's -m
	loader   string // a file for -device loader at loaderAt, if any
	loaderAt uint64
	incoming int // listen for a migration on this port, if nonzero
}

// startQEMU starts a microvm the way TESTHOST.md found works on this
// /dev/kvm: -cpu host minus arch-capabilities, which the PVM-backed KVM
// refuses; no default devices beyond microvm's own serial port, which
// writes to a file.
func startQEMU(ctx context.Context, ps *benchproc.Procs, dir string, s qemuSpec) (*qemuVM, error) {
	serial := filepath.Join(dir, s.name+".serial")
	sock := filepath.Join(dir, s.name+".qmp")
	argv := []string{qemuBinary,
		"-M", "microvm", "-enable-kvm", "-cpu", "host,-arch-capabilities",
		"-m", s.memory, "-smp", "1",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "file:" + serial,
		"-qmp", "unix:" + sock + ",server=on,wait=off",
		"-kernel", s.kernel,
	}
	if s.loader != "" {
		argv = append(argv, "-device", fmt.Sprintf("loader,file=%s,addr=%#x", s.loader, s.loaderAt))
	}
	if s.incoming != 0 {
		argv = append(argv, "-incoming", fmt.Sprintf("tcp:127.0.0.1:%d", s.incoming))
	}
	p, err := ps.Start(s.name, filepath.Join(dir, s.name+".log"), nil, argv...)
	if err != nil {
		return nil, err
	}
	q, err := dialQMP(ctx, p, sock, 30*time.Second)
	if err != nil {
		p.Stop()
		return nil, err
	}
	return &qemuVM{p: p, qmp: q, serial: serial}, nil
}

// quit ends the QEMU process and its QMP session.
func (v *qemuVM) quit() {
	v.qmp.close()
	v.p.Stop()
}

// qemuMigrate migrates the guest of src to dst, listening on port, with
// the bandwidth limit lifted and every other parameter at QEMU's default
// (downtime-limit 300 ms, no auto-converge), and returns QEMU's figures.
func qemuMigrate(ctx context.Context, src, dst *qemuVM, port int, limit time.Duration) (migResult, error) {
	if err := benchproc.WaitListening(ctx, dst.p, port, 30*time.Second); err != nil {
		return migResult{}, err
	}
	if _, err := src.qmp.do("migrate-set-parameters", map[string]any{"max-bandwidth": qemuMaxBandwidth}); err != nil {
		return migResult{}, src.p.Failed(err)
	}
	began := time.Now()
	if _, err := src.qmp.do("migrate", map[string]any{"uri": fmt.Sprintf("tcp:127.0.0.1:%d", port)}); err != nil {
		return migResult{}, src.p.Failed(err)
	}
	var m qemuMigration
	err := benchproc.Poll(ctx, "QEMU's migration to complete", limit, 10*time.Millisecond, func() (bool, error) {
		ret, err := src.qmp.do("query-migrate", nil)
		if err != nil {
			return false, err
		}
		if m, err = parseQueryMigrate(ret); err != nil {
			return false, err
		}
		return m.done()
	})
	if err != nil {
		if m.Status != "" && m.Status != "completed" {
			src.qmp.do("migrate_cancel", nil)
		}
		return migResult{}, src.p.Failed(err)
	}
	wall := time.Since(began)
	r, err := m.result()
	if err != nil {
		return r, err
	}
	r.Wall = wall
	// The destination runs the guest once QEMU there has loaded the
	// state and started the vCPUs; query-status says so.
	err = benchproc.Poll(ctx, "the QEMU destination to run the guest", 30*time.Second, 20*time.Millisecond, func() (bool, error) {
		ret, err := dst.qmp.do("query-status", nil)
		if err != nil {
			return false, err
		}
		var st struct {
			Status string `json:"status"`
		}
		if err := json.Unmarshal(ret, &st); err != nil {
			return false, fmt.Errorf("query-status: %w", err)
		}
		return st.Status == "running", nil
	})
	if err != nil {
		return r, dst.p.Failed(err)
	}
	return r, nil
}

// runQEMUMigration is one QEMU migration of guest kernel (with data
// loaded at dataAt, if data is set) in a fresh pair of processes under
// dir. ready waits for the source guest to be where the measurement
// wants it; after, if not nil, checks the destination guest runs on,
// given the source's console at the switch.
func runQEMUMigration(ctx context.Context, ps *benchproc.Procs, dir, name string, src, dst qemuSpec,
	ready func(*qemuVM) error, after func(srcConsole []byte, dst *qemuVM) error, limit time.Duration) (migResult, error) {
	// A directory of its own, so that no run meets another's socket.
	dir, err := os.MkdirTemp(dir, name+"-qemu-")
	if err != nil {
		return migResult{}, err
	}
	port, err := benchproc.FreePort()
	if err != nil {
		return migResult{}, err
	}
	src.name, dst.name = name+"-qemu-src", name+"-qemu-dst"
	dst.incoming = port
	d, err := startQEMU(ctx, ps, dir, dst)
	if err != nil {
		return migResult{}, err
	}
	defer d.quit()
	s, err := startQEMU(ctx, ps, dir, src)
	if err != nil {
		return migResult{}, err
	}
	defer s.quit()
	if err := ready(s); err != nil {
		return migResult{}, err
	}
	r, err := qemuMigrate(ctx, s, d, port, limit)
	if err != nil {
		return r, err
	}
	if after != nil {
		con, _ := os.ReadFile(s.serial)
		if err := after(con, d); err != nil {
			return r, err
		}
	}
	return r, nil
}

// consoleHas is a waitFile condition: the console shows line.
func consoleHas(line string) func([]byte) bool {
	return func(b []byte) bool { return strings.Contains(string(b), line) }
}
