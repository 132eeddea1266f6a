// Process handling, as in test/cmd/migbench (a main package, so not
// importable): every process started is tracked, stopped on the way out
// and waited for with a bound.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// procs is every process the bench started and has not yet reaped, so
// that an error or a signal anywhere still stops them all.
type procs struct {
	mu   sync.Mutex
	live map[*proc]bool
}

// proc is one started process. Its stderr (and stdout, unless the caller
// takes it) goes to a log file in the run's temporary directory, whose
// tail the errors quote.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process is reaped
	err  error         // its exit, valid after done
}

// start starts argv as name, its output to logPath (stdout to stdout if
// not nil).
func (ps *procs) start(name, logPath string, stdout io.Writer, argv ...string) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = stdout
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own group, so a stop reaches anything it forks; and dead
		// with us if the bench itself is killed, so nothing outlives it.
		Setpgid:   true,
		Pdeathsig: syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	ps.mu.Lock()
	if ps.live == nil {
		ps.live = map[*proc]bool{}
	}
	ps.live[p] = true
	ps.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// exited says whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end by itself.
func (p *proc) wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return p.err
	case <-t.C:
		return fmt.Errorf("%s did not exit within %v", p.name, d)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.name, ctx.Err())
	}
}

// stop ends the process: SIGTERM to its group, SIGKILL if it has not
// gone after a few seconds. Both tern and QEMU tear down cleanly on
// SIGTERM; the kill is for a wedged one, which must not hold the bench.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
	}
}

// stopAll stops every process still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	var all []*proc
	for p := range ps.live {
		all = append(all, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

// logTail returns the end of the process's log, for error messages.
func (p *proc) logTail() string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return ""
	}
	s := strings.TrimSpace(string(b))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return strings.ReplaceAll(s, "\n", " | ")
}

// failed wraps err with the process's log tail and, if it has died, how.
func (p *proc) failed(err error) error {
	msg := err.Error()
	if p.exited() {
		msg += fmt.Sprintf(" (%s exited: %v)", p.name, p.err)
	}
	if t := p.logTail(); t != "" {
		msg += fmt.Sprintf("; %s log: %s", p.name, t)
	}
	return errors.New(msg)
}

// poll calls cond every interval until it returns true or an error,
// giving up after limit (naming what) or when ctx ends. Every wait in
// the bench goes through here or through a timer, so none can hang.
func poll(ctx context.Context, what string, limit, interval time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %v waiting for %s", limit, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(interval):
		}
	}
}
