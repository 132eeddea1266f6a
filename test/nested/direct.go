package nested

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/ternvm/tern/test/fixture"
)

// Direct runs scenario scripts on this machine with sh: for machines whose
// /dev/kvm is backed by hardware virtualization.
type Direct struct {
	fx     *fixture.Fixture
	reason string
}

// Describe implements Backend.
func (d *Direct) Describe() string { return "direct (this machine's /dev/kvm): " + d.reason }

// Run implements Backend. The script's exit status is Result.RC; an error
// means the script could not be run or did not finish in time.
func (d *Direct) Run(ctx context.Context, job Job) (*Result, error) {
	if err := checkJob(job); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "tern-scenario-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(work)
	dir, out := filepath.Join(work, "scenario"), filepath.Join(work, "out")
	for _, p := range []string{dir, out} {
		if err := os.Mkdir(p, 0o755); err != nil {
			return nil, err
		}
	}
	if err := writeFiles(dir, job.Files); err != nil {
		return nil, err
	}
	tern, err := filepath.Abs(job.Tern)
	if err != nil {
		return nil, err
	}
	env := scriptEnv(tern, d.fx.BzImage, d.fx.Vmlinux, d.fx.Initramfs, out, dir, job.Env)
	env["ROOT_IMAGE"] = d.fx.RootImage
	env["AGENT"] = d.fx.Agent

	cmd := exec.CommandContext(ctx, "sh", filepath.Join(dir, job.Entry))
	cmd.Dir = out
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var buf bytes.Buffer
	w := outputSink(&buf, job.Live)
	cmd.Stdout, cmd.Stderr = w, w
	// The script's children (tern) are killed with it on timeout.
	cmd.SysProcAttr = killGroupAttr()
	cmd.Cancel = func() error { return killGroup(cmd) }
	err = cmd.Run()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("scenario %s did not finish: %w; output ends:\n%s", job.Entry, ctx.Err(), tail(buf.String(), 40))
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return &Result{Output: buf.String(), RC: exit.ExitCode()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", job.Entry, err)
	}
	return &Result{Output: buf.String(), RC: 0}, nil
}
