package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/ternvm/tern/test/benchproc"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// receiveDoneLine is what `tern migrate receive` logs once the guest runs
// on it.
const receiveDoneLine = "incoming migration complete: the guest runs here"

// ternSpec is the guest a tern migration moves.
type ternSpec struct {
	kernel string
	memory string // tern's --memory
	initrd string // optional
}

// ternHasMigrate says whether the tern binary has the migrate commands
// yet (they are being written beside this bench), so that a tern without
// them is named as such rather than failing obscurely.
func ternHasMigrate(ctx context.Context, tern string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, tern, "migrate", "receive", "--help").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--listen") {
		return fmt.Errorf("%s has no `migrate receive --listen` command (the migration CLI is not on this branch yet)", tern)
	}
	return nil
}

// runTernMigration is one tern migration of s between two fresh tern
// processes under dir, over loopback TCP without TLS. ready waits for the
// source guest (its console file given) to be where the measurement
// wants it; after, if not nil, checks the destination guest runs on.
// send runs with its defaults (downtime target, no bandwidth cap).
func runTernMigration(ctx context.Context, ps *benchproc.Procs, dir, name, tern string, s ternSpec,
	ready func(p *benchproc.Proc, console string) error, after func(srcConsole []byte, dst *benchproc.Proc, console string) error,
	limit time.Duration) (migResult, error) {
	// A directory of its own, so that no run meets another's socket.
	dir, err := os.MkdirTemp(dir, name+"-tern-")
	if err != nil {
		return migResult{}, err
	}
	port, err := benchproc.FreePort()
	if err != nil {
		return migResult{}, err
	}
	srcName, dstName := name+"-tern-src", name+"-tern-dst"
	srcCon, dstCon := filepath.Join(dir, srcName+".console"), filepath.Join(dir, dstName+".console")
	sock := filepath.Join(dir, srcName+".sock")

	dst, err := ps.Start(dstName, filepath.Join(dir, dstName+".log"), nil, tern, "migrate", "receive",
		"--listen", fmt.Sprintf("tcp:127.0.0.1:%d", port), "--insecure", "--console", dstCon)
	if err != nil {
		return migResult{}, err
	}
	defer dst.Stop()
	argv := []string{tern, "run", "--kernel", s.kernel, "--pvh", "--memory", s.memory,
		"--console", srcCon, "--api-socket", sock}
	if s.initrd != "" {
		argv = append(argv, "--initrd", s.initrd)
	}
	src, err := ps.Start(srcName, filepath.Join(dir, srcName+".log"), nil, argv...)
	if err != nil {
		return migResult{}, err
	}
	defer src.Stop()
	if err := ready(src, srcCon); err != nil {
		return migResult{}, err
	}
	if err := benchproc.Poll(ctx, srcName+"'s API socket", 30*time.Second, 20*time.Millisecond, func() (bool, error) {
		_, err := os.Stat(sock)
		return err == nil, nil
	}); err != nil {
		return migResult{}, src.Failed(err)
	}
	if err := benchproc.WaitListening(ctx, dst, port, 30*time.Second); err != nil {
		return migResult{}, err
	}

	var stdout bytes.Buffer
	began := time.Now()
	send, err := ps.Start(name+"-tern-send", filepath.Join(dir, name+"-tern-send.log"), &stdout,
		tern, "migrate", "send", "--api-socket", sock,
		"--to", fmt.Sprintf("tcp:127.0.0.1:%d", port), "--insecure", "--output", "json")
	if err != nil {
		return migResult{}, err
	}
	if err := send.Wait(ctx, limit); err != nil {
		send.Stop()
		return migResult{}, send.Failed(fmt.Errorf("tern migrate send: %w", err))
	}
	wall := time.Since(began)
	r, err := parseTernStatus(stdout.Bytes())
	if err != nil {
		return r, send.Failed(err)
	}
	r.Wall = wall
	// send returns once the destination runs the guest; its log says so
	// too, and the source, its guest gone, exits by itself.
	if err := benchproc.WaitFile(ctx, dst, dst.Log, "the destination's "+receiveDoneLine, 10*time.Second, consoleHas(receiveDoneLine)); err != nil {
		return r, err
	}
	if err := src.Wait(ctx, 10*time.Second); err != nil && !errors.As(err, new(*exec.ExitError)) {
		return r, src.Failed(fmt.Errorf("the source after the migration: %w", err))
	}
	if after != nil {
		con, _ := os.ReadFile(srcCon)
		if err := after(con, dst, dstCon); err != nil {
			return r, err
		}
	}
	return r, nil
}
