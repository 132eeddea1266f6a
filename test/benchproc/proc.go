// Package benchproc starts and stops the processes of the bench programs
// (test/cmd/migbench, test/cmd/startbench): every process started is
// tracked, stopped on the way out and waited for with a bound, and errors
// quote the tail of its log.
package benchproc

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Procs is every process the bench started and has not yet reaped, so
// that an error or a signal anywhere still stops them all.
type Procs struct {
	mu   sync.Mutex
	live map[*Proc]bool
}

// Proc is one started process. Its stderr (and stdout, unless the caller
// takes it) goes to a log file in the run's temporary directory, whose
// tail the errors quote.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	Log  string
	Done chan struct{} // closed once the process is reaped
	Err  error         // its exit, valid after done
	// Started is when fork/exec began, after its log file was made:
	// what a start-up figure counts from.
	Started time.Time
}

// Start starts argv as name, its output to logPath (stdout to stdout if
// not nil).
func (ps *Procs) Start(name, logPath string, stdout io.Writer, argv ...string) (*Proc, error) {
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
	started := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, argv[0], err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, Done: make(chan struct{}), Started: started}
	ps.mu.Lock()
	if ps.live == nil {
		ps.live = map[*Proc]bool{}
	}
	ps.live[p] = true
	ps.mu.Unlock()
	go func() {
		p.Err = cmd.Wait()
		logf.Close()
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
		close(p.Done)
	}()
	return p, nil
}

// exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.Done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to end by itself.
func (p *Proc) Wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.Done:
		return p.Err
	case <-t.C:
		return fmt.Errorf("%s did not exit within %v", p.Name, d)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.Name, ctx.Err())
	}
}

// stop ends the process: SIGTERM to its group, SIGKILL if it has not
// gone after a few seconds. Both tern and QEMU tear down cleanly on
// SIGTERM; the kill is for a wedged one, which must not hold the bench.
func (p *Proc) Stop() {
	if p.Exited() {
		return
	}
	pgid := p.Cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.Done:
		return
	case <-time.After(5 * time.Second):
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-p.Done:
	case <-time.After(5 * time.Second):
	}
}

// stopAll stops every process still running.
func (ps *Procs) StopAll() {
	ps.mu.Lock()
	var all []*Proc
	for p := range ps.live {
		all = append(all, p)
	}
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range all {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop() }()
	}
	wg.Wait()
}

// logTail returns the end of the process's log, for error messages.
func (p *Proc) LogTail() string {
	b, err := os.ReadFile(p.Log)
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
func (p *Proc) Failed(err error) error {
	msg := err.Error()
	if p.Exited() {
		msg += fmt.Sprintf(" (%s exited: %v)", p.Name, p.Err)
	}
	if t := p.LogTail(); t != "" {
		msg += fmt.Sprintf("; %s log: %s", p.Name, t)
	}
	return errors.New(msg)
}

// poll calls cond every interval until it returns true or an error,
// giving up after limit (naming what) or when ctx ends. Every wait in
// the bench goes through here or through a timer, so none can hang.
func Poll(ctx context.Context, what string, limit, interval time.Duration, cond func() (bool, error)) error {
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

// freePort returns a loopback TCP port nobody listens on now. Another
// process could take it before we use it; on this machine that is a
// small risk, and the failure would say so.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until something listens on 127.0.0.1:port, read
// from /proc/net/tcp so that no probe connection is made.
func WaitListening(ctx context.Context, p *Proc, port int, limit time.Duration) error {
	err := Poll(ctx, fmt.Sprintf("%s to listen on 127.0.0.1:%d", p.Name, port), limit, 20*time.Millisecond, func() (bool, error) {
		if p.Exited() {
			return false, errors.New("it exited before listening")
		}
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			return false, err
		}
		return TCPListening(b, port), nil
	})
	if err != nil {
		return p.Failed(err)
	}
	return nil
}

// WaitFile waits until the file at path satisfies cond (it may not exist
// yet), while p runs.
func WaitFile(ctx context.Context, p *Proc, path, what string, limit time.Duration, cond func([]byte) bool) error {
	err := Poll(ctx, what, limit, 20*time.Millisecond, func() (bool, error) {
		b, err := os.ReadFile(path)
		if err == nil && cond(b) {
			return true, nil
		}
		if p.Exited() {
			return false, fmt.Errorf("%s exited while waiting for %s", p.Name, what)
		}
		return false, nil
	})
	if err != nil {
		return p.Failed(err)
	}
	return nil
}

// TCPListening says whether /proc/net/tcp (its text given) shows a socket
// listening on 127.0.0.1:port. Waiting on this rather than connecting
// matters: tern's receiver takes exactly one connection, so a probe would
// use it up.
func TCPListening(procNetTCP []byte, port int) bool {
	want := fmt.Sprintf("0100007F:%04X", port)
	sc := bufio.NewScanner(bytes.NewReader(procNetTCP))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local_address rem_address st ...; 0A is TCP_LISTEN.
		if len(f) > 3 && f[1] == want && f[3] == "0A" {
			return true
		}
	}
	return false
}

// Session is what one bench run holds: a context that SIGINT, SIGTERM or
// the run's time limit ends, a temporary directory for its files, and the
// processes it starts there.
type Session struct {
	Ctx   context.Context
	Dir   string
	Procs *Procs
	stop  func()
}

// NewSession starts a run of bench (the temporary directory is named after
// it) limited to timeout. Close it when done.
func NewSession(bench string, timeout time.Duration) (*Session, error) {
	dir, err := os.MkdirTemp("", "tern-"+bench+"-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	return &Session{Ctx: ctx, Dir: dir, Procs: &Procs{}, stop: func() { cancel(); stopSignals() }}, nil
}

// Close stops every process the run started, then removes its files (in
// that order: a process may still write there), then ends its context.
func (s *Session) Close() {
	s.Procs.StopAll()
	os.RemoveAll(s.Dir)
	s.stop()
}
