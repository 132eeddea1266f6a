package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
)

// The hostile tiny guest attacks tern on this host's /dev/kvm as the stock
// guest's agent does in the nested test host (test/scenarios/hostile.sh,
// opt-in there because the stock guest itself dies under its attack in
// the emulated host): it sweeps the I/O ports, touches the unbacked MMIO
// hole, floods its console with terminal escape sequences and spams the
// boot timer, and tern must stay what its operator relies on.
const (
	// How far tern's RSS may rise over the attack: the guest touches no
	// new memory, so tern may grow only by what it keeps per access.
	hostileRSSSlackKiB = 8192
	// How much tern may log over the measured part of the attack (about
	// 6 s): two kinds of line, each at most 10 a second, when the guest
	// makes tens of thousands of unhandled accesses and boot-timer
	// writes a second.
	hostileLogLimit = 100 << 10
)

// floodLine is a whole flood line, escapes and all; its group is the
// round the guest numbered it with.
var floodLine = regexp.MustCompile(`^` + regexp.QuoteMeta(tinyguest.FloodPrefix) + `([0-9a-f]{8}) .*` +
	regexp.QuoteMeta(strings.TrimSuffix(tinyguest.FloodSuffix, "\r\n")) + `$`)

// floodRounds returns the rounds of the whole flood lines in console, in
// order, and how many lines are neither a flood line nor one of the
// guest's own (what is left of a line that lost bytes on the way). The
// last line, which may be under way, is left out.
func floodRounds(console string) (rounds []int, fragments int) {
	lines := strings.Split(console, "\n")
	for _, l := range lines[:len(lines)-1] {
		l = strings.TrimSuffix(l, "\r")
		if m := floodLine.FindStringSubmatch(l); m != nil {
			n, _ := strconv.ParseUint(m[1], 16, 32)
			rounds = append(rounds, int(n))
			continue
		}
		if l == tinyguest.HostileStartLine || l == tinyguest.HostileDoneLine || strings.HasPrefix(l, tinyguest.TickPrefix) {
			continue
		}
		fragments++
	}
	return rounds, fragments
}

// fromZero says where rounds is not 0, 1, 2, ...: "" when it is.
func fromZero(rounds []int) string {
	if len(rounds) == 0 {
		return "no flood line"
	}
	for i, r := range rounds {
		if r != i {
			return fmt.Sprintf("line %d is round %d (%d lines, the last round %d)", i, r, len(rounds), rounds[len(rounds)-1])
		}
	}
	return ""
}

// rssKiB is the resident set of process pid, as /proc says.
func rssKiB(pid int) (int, error) {
	v, err := procStatus(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	if err != nil {
		return 0, err
	}
	if v == "" {
		return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
	}
	return strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(v, "kB")))
}

func (p *ternProc) lastTick() int64 {
	b, _ := os.ReadFile(p.console)
	return tinyguest.LastTick(string(b))
}

// waitRound waits until the guest has ticked past round n.
func (p *ternProc) waitRound(t *testing.T, n int64) {
	t.Helper()
	p.waitGuest(t, func() bool { return p.lastTick() > n }, func() string {
		return fmt.Sprintf("the guest did not get past round %d in 20 s (last tick %d)", n, p.lastTick())
	})
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// TestHostileGuestCannotTakeTernOver runs the attack with the console in
// a file, tern's log at debug level (so every unhandled access is one it
// would log) and its API socket, under the seccomp filter: tern's memory
// and log stay bounded, its API pauses, resumes and snapshots the guest,
// the console file keeps every byte the guest wrote, and a SIGTERM ends
// tern at once.
func TestHostileGuestCannotTakeTernOver(t *testing.T) {
	requireNoCgo(t)
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	elf, err := tinyguest.BuildHostile(dir, tinyguest.HostileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := startTern(t, dir, "attack", nil, "--log-level", "debug", "run", "--kernel", elf, "--pvh", "--memory", "128M")
	p.waitAPI(t)
	p.waitRound(t, 5)
	pid := p.cmd.Process.Pid

	rss0, err := rssKiB(pid)
	if err != nil {
		t.Fatal(err)
	}
	log0 := len(p.stderr.String())
	began := time.Now()
	// rssMax is the sampler's until wg.Wait returns.
	var (
		rssMax = rss0
		stop   = make(chan struct{})
		wg     sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if n, err := rssKiB(pid); err == nil {
				rssMax = max(rssMax, n)
			}
		}
	}()

	// The API mid-attack: a paused guest writes nothing more.
	time.Sleep(time.Second)
	if err := setVMState(p.api, "Paused"); err != nil {
		t.Fatalf("pause mid-attack: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // a write under way lands
	paused := fileSize(t, p.console)
	pausedTick := p.lastTick()
	time.Sleep(time.Second)
	if now := fileSize(t, p.console); now != paused {
		t.Errorf("the paused guest's console grew from %d to %d bytes", paused, now)
	}
	if err := setVMState(p.api, "Resumed"); err != nil {
		t.Fatalf("resume mid-attack: %v", err)
	}
	p.waitRound(t, pausedTick+3)

	if err := setVMState(p.api, "Paused"); err != nil {
		t.Fatalf("pause for the snapshot: %v", err)
	}
	snap := filepath.Join(dir, "snap")
	body, _ := json.Marshal(map[string]string{"dir": snap, "snapshot_type": "Full"})
	if _, err := apiCall(p.api, http.MethodPut, "/snapshot/create", string(body)); err != nil {
		t.Fatalf("snapshot mid-attack: %v", err)
	}
	for _, f := range []string{"vmstate", "memory"} {
		if _, err := os.Stat(filepath.Join(snap, f)); err != nil {
			t.Errorf("the snapshot lacks %s: %v", f, err)
		}
	}
	os.RemoveAll(snap)
	beforeResume := p.lastTick()
	if err := setVMState(p.api, "Resumed"); err != nil {
		t.Fatalf("resume after the snapshot: %v", err)
	}
	p.waitRound(t, beforeResume+3)
	time.Sleep(3 * time.Second)

	close(stop)
	wg.Wait()
	secs := time.Since(began).Seconds()
	logged := p.stderr.String()
	select {
	case <-p.done:
		t.Fatalf("tern ended during the attack (status %d); stderr:\n%s", p.cmd.ProcessState.ExitCode(), logged)
	default:
	}
	t.Logf("attack measured for %.1f s: guest at round %d, tern's RSS %d KiB at the start, at most %d, log +%d bytes",
		secs, p.lastTick(), rss0, rssMax, len(logged)-log0)
	if rssMax > rss0+hostileRSSSlackKiB {
		t.Errorf("tern's RSS rose from %d to %d KiB during the attack (limit +%d)", rss0, rssMax, hostileRSSSlackKiB)
	}
	if grew := len(logged) - log0; grew > hostileLogLimit {
		t.Errorf("tern logged %d bytes in %.1f s of attack (limit %d)", grew, secs, hostileLogLimit)
	}
	for _, want := range []struct{ what, re string }{
		{"unhandled port accesses", `guest access to nothing.*space=port`},
		{"unhandled MMIO accesses", `guest access to nothing.*space=mmio`},
		{"how many unhandled-access lines it dropped", `guest access to nothing.*dropped=[1-9]`},
		{"how many boot-timer lines it dropped", `guest signalled boot done.*dropped=[1-9]`},
	} {
		if !regexp.MustCompile(want.re).MatchString(logged) {
			t.Errorf("tern's log does not show %s (%s)", want.what, want.re)
		}
	}
	console, err := os.ReadFile(p.console)
	if err != nil {
		t.Fatal(err)
	}
	rounds, fragments := floodRounds(string(console))
	if bad := fromZero(rounds); bad != "" {
		t.Errorf("the console file lost flood lines: %s", bad)
	}
	if fragments != 0 {
		t.Errorf("the console file holds %d lines cut short", fragments)
	}
	if !bytes.Contains(console, []byte("\x1b]52;c;"+tinyguest.FloodClipboard)) {
		t.Errorf("the console file lacks the guest's raw escape sequences: a file keeps what the guest wrote")
	}

	// SIGTERM mid-attack.
	t0 := time.Now()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("tern still runs 10 s after SIGTERM mid-attack")
	}
	took := time.Since(t0)
	if code := p.cmd.ProcessState.ExitCode(); code != 128+int(syscall.SIGTERM) {
		t.Errorf("after SIGTERM mid-attack: exit status %d, want %d", code, 128+int(syscall.SIGTERM))
	}
	// An operator's SIGTERM must not wait on the guest: tern's own
	// teardown takes milliseconds; the limit leaves room for a loaded CI.
	if took > 2*time.Second {
		t.Errorf("tern took %v to end after SIGTERM mid-attack (limit 2 s)", took)
	}
}

// TestHostileGuestOnStdioReachesNoTerminal runs a shorter attack with the
// console on stdio, into a pipe as an operator's terminal would get it:
// the flood's text comes through, every line of it, and not one escape.
func TestHostileGuestOnStdioReachesNoTerminal(t *testing.T) {
	requireNoCgo(t)
	tinyguest.RequireKVM(t)
	const rounds = 20
	elf, err := tinyguest.BuildHostile(t.TempDir(), tinyguest.HostileOptions{Rounds: rounds})
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := ternCommand(nil, "run", "--kernel", elf, "--pvh", "--memory", "128M", "--console", "stdio")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("the %d-round attack did not end in 60 s; stderr:\n%s", rounds, stderr.String())
	}
	if err != nil {
		t.Fatalf("tern: %v (want exit 0 at the guest's poweroff); stderr:\n%s", err, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, tinyguest.HostileDoneLine+"\n") {
		t.Fatalf("the guest did not finish its attack; stdout:\n%q\nstderr:\n%s", out, stderr.String())
	}
	if n := strings.Count(out, "\x1b"); n != 0 {
		t.Errorf("%d ESC bytes came through", n)
	}
	if n := strings.Count(out, "\xc2\x9b"); n != 0 {
		t.Errorf("%d C1 CSIs (UTF-8 c2 9b) came through", n)
	}
	for _, s := range []string{tinyguest.FloodTitle, tinyguest.FloodClipboard} {
		if strings.Contains(out, s) {
			t.Errorf("%q came through: it belongs inside an escape sequence", s)
		}
	}
	got, fragments := floodRounds(out)
	if bad := fromZero(got); bad != "" || len(got) != rounds {
		t.Errorf("the flood's lines did not all come through (%d of %d): %s", len(got), rounds, bad)
	}
	if fragments != 0 {
		t.Errorf("%d lines came through cut short or mangled", fragments)
	}
}
