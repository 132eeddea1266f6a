package nested

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/test/fixture"
)

// fakeFixture is a fixture whose files exist but hold only their names,
// enough to write a test host's initramfs.
func fakeFixture(t *testing.T) *fixture.Fixture {
	t.Helper()
	dir := t.TempDir()
	file := func(rel string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("fake "+rel), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fx := &fixture.Fixture{
		ModulesDir: filepath.Join(dir, "modules"),
		Busybox:    file("busybox"), Agent: file("agent"),
		BzImage: file("bzImage"), Vmlinux: file("vmlinux"),
		Initramfs: file("initramfs.cpio"), RootImage: file("root.ext4"),
	}
	for _, m := range append(append(append([]string{}, kvmModules...), netModules...), linkModules...) {
		file(filepath.Join("modules", "kernel", m))
	}
	return fx
}

func TestPairEndsQEMUArgs(t *testing.T) {
	a, b := pairEnds(40123)
	wantA := []string{"-netdev", "socket,id=link,listen=127.0.0.1:40123", "-device", "virtio-net-pci,netdev=link,mac=" + linkMACA}
	wantB := []string{"-netdev", "socket,id=link,connect=127.0.0.1:40123", "-device", "virtio-net-pci,netdev=link,mac=" + linkMACB}
	if got := a.qemuArgs(); !slices.Equal(got, wantA) {
		t.Errorf("host A: %q, want %q", got, wantA)
	}
	if got := b.qemuArgs(); !slices.Equal(got, wantB) {
		t.Errorf("host B: %q, want %q", got, wantB)
	}
	if linkMACA == linkMACB {
		t.Error("both ends have the same MAC")
	}
}

// A pair's member is the Host with its NIC, its CPUs, the NIC's drivers
// and hostlink.sh in its initramfs and the link in its script's
// environment; the Host and the caller's job are left as they were.
func TestPairMember(t *testing.T) {
	fx := fakeFixture(t)
	customized := false
	h := &Host{fx: fx, qemu: "qemu-system-x86_64", MemoryMiB: 2048, CPUs: 2, Customize: func(*fixture.Tree) { customized = true }}
	tern := filepath.Join(t.TempDir(), "tern")
	os.WriteFile(tern, []byte("fake tern"), 0o755)
	job := Job{Files: map[string][]byte{"dst.sh": []byte("echo hi\n")}, Entry: "dst.sh", Tern: tern, Env: map[string]string{"MINE": "kept"}}
	_, endB := pairEnds(40123)

	m, mjob := h.member(job, endB, 1)

	args := strings.Join(m.qemuArgs("host.cpio", "hb", "mon.sock"), " ")
	for _, want := range []string{"-smp 1", "-netdev socket,id=link,connect=127.0.0.1:40123", "-device virtio-net-pci,netdev=link,mac=" + linkMACB, "-net none"} {
		if !strings.Contains(args, want) {
			t.Errorf("QEMU command line lacks %q: %s", want, args)
		}
	}
	if h.CPUs != 2 || len(h.link) != 0 || len(job.Env) != 1 {
		t.Errorf("the Host or the job changed: CPUs %d, link %q, env %v", h.CPUs, h.link, job.Env)
	}
	if got := strings.Join(h.qemuArgs("host.cpio", "hb", "mon.sock"), " "); strings.Contains(got, "netdev") {
		t.Errorf("a single host got a NIC: %s", got)
	}
	for k, v := range map[string]string{"MINE": "kept", "LINK_ADDR": LinkAddrB, "LINK_PEER": LinkAddrA, "TEST_HOST_LINK_ADDR": LinkAddrB + "/24", "TEST_HOST_LINK_MAC": linkMACB} {
		if mjob.Env[k] != v {
			t.Errorf("job env %s=%q, want %q", k, mjob.Env[k], v)
		}
	}

	var cpio bytes.Buffer
	if err := m.Tree(mjob).WriteCPIO(&cpio); err != nil {
		t.Fatal(err)
	}
	if !customized {
		t.Error("the Host's own Customize was not applied")
	}
	for _, want := range []string{"etc/hostlink.sh", string(hostLink), "export TEST_HOST_LINK_ADDR='192.168.77.2/24'", "export LINK_PEER='192.168.77.1'"} {
		if !bytes.Contains(cpio.Bytes(), []byte(want)) {
			t.Errorf("initramfs lacks %q", want)
		}
	}
	for _, mod := range linkModules {
		name := "modules/" + filepath.Base(mod)
		if !bytes.Contains(cpio.Bytes(), []byte(name)) || !bytes.Contains(cpio.Bytes(), []byte("fake modules/kernel/"+mod)) {
			t.Errorf("initramfs lacks %s with the fixture's %s", name, mod)
		}
		// hostlink.sh loads it by name.
		if !strings.Contains(string(hostLink), " "+strings.TrimSuffix(filepath.Base(mod), ".ko")) {
			t.Errorf("hostlink.sh does not load %s", mod)
		}
	}
}

// A host whose clock runs ahead starts its RTC that far past now.
func TestClockAheadRTC(t *testing.T) {
	h := &Host{fx: fakeFixture(t), MemoryMiB: 2048, CPUs: 1, clockAhead: time.Hour}
	args := h.qemuArgs("host.cpio", "hb", "mon.sock")
	i := slices.Index(args, "-rtc")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no -rtc in %q", args)
	}
	base, err := time.Parse("base=2006-01-02T15:04:05", args[i+1])
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(base); d < 59*time.Minute || d > 61*time.Minute {
		t.Errorf("-rtc %s is %v from now, want an hour", args[i+1], d)
	}
	h.clockAhead = 0
	if slices.Contains(h.qemuArgs("host.cpio", "hb", "mon.sock"), "-rtc") {
		t.Error("a host without clockAhead got -rtc")
	}
}

func TestListensOn(t *testing.T) {
	procNetTCP := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9CBB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1125 1 0 100 0 0 10 0
   1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1126 1 0 100 0 0 10 0
   2: 0100007F:1F40 0100007F:9CBC 01 00000000:00000000 00:00000000 00000000     0        0 1127 1 0 100 0 0 10 0
   3: 0200A8C0:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1128 1 0 100 0 0 10 0
`
	for _, tc := range []struct {
		port int
		want bool
	}{
		{0x9CBB, true},  // 127.0.0.1, LISTEN
		{0x07E8, true},  // 0.0.0.0, LISTEN
		{0x1F40, false}, // established only
		{0x1F41, false}, // another address
		{0x1234, false}, // nothing
	} {
		if got := listensOn(procNetTCP, tc.port); got != tc.want {
			t.Errorf("port %d: %v, want %v", tc.port, got, tc.want)
		}
	}
}

func TestWaitListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := waitListening(context.Background(), port, 5*time.Second, 10*time.Millisecond); err != nil {
		t.Errorf("a listening port: %v", err)
	}
	ln.Close()
	if err := waitListening(context.Background(), port, 100*time.Millisecond, 10*time.Millisecond); err == nil {
		t.Error("a closed port was reported listening")
	}
}

// fakeHost is one host's run for runPair: it returns res or err once
// after wait, or ctx's error when ctx ends first.
type fakeHost struct {
	wait    time.Duration
	res     *Result
	err     error
	started bool
	stopped bool // ctx ended it
}

func (f *fakeHost) run(ctx context.Context) (*Result, error) {
	f.started = true
	select {
	case <-time.After(f.wait):
		return f.res, f.err
	case <-ctx.Done():
		f.stopped = true
		return nil, fmt.Errorf("did not finish: %w", ctx.Err())
	}
}

func TestRunPair(t *testing.T) {
	ok := func(out string, rc int) *Result { return &Result{Output: out, RC: rc} }
	wedged := fmt.Errorf("heartbeat stopped: %w", ErrHostWedged)
	listens := func(context.Context) error { return nil }
	for _, tc := range []struct {
		name       string
		a, b       *fakeHost
		listening  func(context.Context) error
		wantErr    []string // in the error, in order; none: a result
		wedged     bool
		bStarted   bool
		aStopped   bool
		bStopped   bool
		wantOutput [2]string
	}{
		{name: "both finish: both outputs and statuses",
			a: &fakeHost{wait: 10 * time.Millisecond, res: ok("A out", 0)}, b: &fakeHost{wait: 30 * time.Millisecond, res: ok("B out", 1)},
			listening: listens, bStarted: true, wantOutput: [2]string{"A out", "B out"}},
		{name: "A wedges: B is stopped, the pair counts as wedged",
			a: &fakeHost{wait: 10 * time.Millisecond, err: wedged}, b: &fakeHost{wait: time.Hour},
			listening: listens, wantErr: []string{"test host A (src.sh)", "heartbeat stopped", "stopped with it", "test host B (dst.sh)"},
			wedged: true, bStarted: true, bStopped: true},
		{name: "B wedges: A is stopped",
			a: &fakeHost{wait: time.Hour}, b: &fakeHost{wait: 10 * time.Millisecond, err: wedged},
			listening: listens, wantErr: []string{"test host B (dst.sh)", "stopped with it", "test host A"},
			wedged: true, bStarted: true, aStopped: true},
		{name: "B's QEMU fails: A is stopped, not a wedge",
			a: &fakeHost{wait: time.Hour}, b: &fakeHost{wait: 10 * time.Millisecond, err: errors.New("qemu failed")},
			listening: listens, wantErr: []string{"test host B (dst.sh): qemu failed"}, bStarted: true, aStopped: true},
		{name: "A finishes, B does not: B's error comes with A's output",
			a: &fakeHost{wait: 10 * time.Millisecond, res: ok("line 1\nsend failed", 1)}, b: &fakeHost{wait: 30 * time.Millisecond, err: errors.New("did not finish")},
			listening: listens, wantErr: []string{"test host B (dst.sh): did not finish", "test host A (src.sh) had finished with status 1", "send failed"}, bStarted: true},
		{name: "A never listens: B is not started",
			a: &fakeHost{wait: time.Hour}, b: &fakeHost{},
			listening: func(context.Context) error { return errors.New("nothing listened") },
			wantErr:   []string{"test host A (src.sh): nothing listened", "host B was not started"}, aStopped: true},
		{name: "A powers off before it listens: B is not started",
			a: &fakeHost{res: ok("", 125)}, b: &fakeHost{},
			listening: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
			wantErr:   []string{"test host A (src.sh): it powered off (scenario status 125)", "host B was not started"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := runPair(context.Background(), "src.sh", "dst.sh", tc.a.run, tc.b.run, tc.listening)
			if len(tc.wantErr) == 0 {
				if err != nil || res == nil || res.A == nil || res.B == nil {
					t.Fatalf("runPair = %v, %v; want both results", res, err)
				}
				if res.A.Output != tc.wantOutput[0] || res.B.Output != tc.wantOutput[1] || res.A.RC != tc.a.res.RC || res.B.RC != tc.b.res.RC {
					t.Errorf("results %+v %+v, want A's and B's", res.A, res.B)
				}
			} else {
				if err == nil {
					t.Fatalf("runPair = %+v, nil; want an error", res)
				}
				rest := err.Error()
				for _, w := range tc.wantErr {
					i := strings.Index(rest, w)
					if i < 0 {
						t.Errorf("error %q lacks %q (in order)", err, w)
						break
					}
					rest = rest[i+len(w):]
				}
			}
			if errors.Is(err, ErrHostWedged) != tc.wedged {
				t.Errorf("errors.Is(err, ErrHostWedged) = %v, want %v (err %v)", !tc.wedged, tc.wedged, err)
			}
			if tc.b.started != tc.bStarted {
				t.Errorf("host B started: %v, want %v", tc.b.started, tc.bStarted)
			}
			if tc.a.stopped != tc.aStopped || tc.b.stopped != tc.bStopped {
				t.Errorf("stopped early: A %v, B %v; want %v, %v", tc.a.stopped, tc.b.stopped, tc.aStopped, tc.bStopped)
			}
		})
	}
}
