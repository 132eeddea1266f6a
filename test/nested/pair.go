package nested

import (
	"context"
	_ "embed"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ternvm/tern/test/fixture"
)

// A pair is two test hosts that run at once, each its own scenario, joined
// by a network: what a migration between two hosts needs, as users have
// it (two kernels, two KVMs, two clocks). Each host gets one virtio-net
// NIC; QEMU carries the frames between the two NICs over a TCP connection
// on this machine's loopback (-netdev socket: host A listens, host B
// connects), so the pair needs no privileges and no bridge here.

// hostLink is sourced by a pair host's /init (hostinit.sh): it loads the
// NIC's drivers and gives the NIC its address.
//
//go:embed hostlink.sh
var hostLink []byte

// linkModules are the NIC's drivers from the fixture kernel (VIRTIO_PCI=m,
// VIRTIO_NET=m in the cloud config). hostlink.sh loads them in its own
// order, each after what modules.dep says it needs: virtio_pci needs
// virtio_ring, virtio, virtio_pci_modern_dev and virtio_pci_legacy_dev;
// virtio_net needs virtio_ring, virtio and net_failover, which needs
// failover.
var linkModules = []string{
	"drivers/virtio/virtio_ring.ko",
	"drivers/virtio/virtio.ko",
	"drivers/virtio/virtio_pci_modern_dev.ko",
	"drivers/virtio/virtio_pci_legacy_dev.ko",
	"drivers/virtio/virtio_pci.ko",
	"net/core/failover.ko",
	"drivers/net/net_failover.ko",
	"drivers/net/virtio_net.ko",
}

// The pair's network: fixed addresses, so scenarios can name the peer.
const (
	LinkAddrA  = "192.168.77.1"
	LinkAddrB  = "192.168.77.2"
	linkPrefix = "/24"
	linkMACA   = "52:54:00:77:00:01"
	linkMACB   = "52:54:00:77:00:02"
)

// PairJob is one job for each host of a pair. Each script finds, beside
// what a single host's script finds, LINK_ADDR (its own address on the
// link) and LINK_PEER (the other host's).
type PairJob struct {
	A, B Job
	// CPUs is how many vCPUs each test host has; 0 keeps the Host's.
	CPUs int
	// ClockAheadB starts host B's clock this far ahead of host A's (both
	// otherwise start from this machine's): two hosts' clocks never
	// agree exactly, and a guest that moves must take the new host's.
	ClockAheadB time.Duration
}

// PairResult is what each host's job produced.
type PairResult struct {
	A, B *Result
}

// linkEnd is one host's end of the link.
type linkEnd struct {
	listen bool // host A listens, host B connects
	port   int  // on this machine's loopback
	mac    string
	addr   string // without prefix
	peer   string
}

func pairEnds(port int) (a, b linkEnd) {
	a = linkEnd{listen: true, port: port, mac: linkMACA, addr: LinkAddrA, peer: LinkAddrB}
	b = linkEnd{listen: false, port: port, mac: linkMACB, addr: LinkAddrB, peer: LinkAddrA}
	return a, b
}

// qemuArgs are the NIC and its netdev on the QEMU command line.
func (e linkEnd) qemuArgs() []string {
	mode := "connect"
	if e.listen {
		mode = "listen"
	}
	return []string{
		"-netdev", fmt.Sprintf("socket,id=link,%s=127.0.0.1:%d", mode, e.port),
		"-device", "virtio-net-pci,netdev=link,mac=" + e.mac,
	}
}

// env is what the host's /init (TEST_HOST_LINK_*) and its scenario
// (LINK_*) learn about the link.
func (e linkEnd) env() map[string]string {
	return map[string]string{
		"TEST_HOST_LINK_MAC":  e.mac,
		"TEST_HOST_LINK_ADDR": e.addr + linkPrefix,
		"LINK_ADDR":           e.addr,
		"LINK_PEER":           e.peer,
	}
}

// member is h as one host of a pair: its NIC on the command line, the
// NIC's drivers and hostlink.sh in its initramfs, the link in its job's
// environment.
func (h *Host) member(job Job, end linkEnd, cpus int) (*Host, Job) {
	m := *h
	if cpus > 0 {
		m.CPUs = cpus
	}
	m.link = end.qemuArgs()
	custom := h.Customize
	m.Customize = func(t *fixture.Tree) {
		for _, mod := range linkModules {
			t.HostFile("/modules/"+filepath.Base(mod), 0o644, h.fx.Module(mod))
		}
		t.File("/etc/hostlink.sh", 0o644, hostLink)
		if custom != nil {
			custom(t)
		}
	}
	env := map[string]string{}
	for k, v := range job.Env {
		env[k] = v
	}
	for k, v := range end.env() {
		env[k] = v
	}
	job.Env = env
	return &m, job
}

// RunPair boots two test hosts joined by a network, host A with pj.A and
// host B with pj.B, and returns both results once both have powered off.
// Each host is watched for wedging as Run watches one; when either run
// fails (wedged, QEMU failed, ctx ended), the other host is stopped at
// once, since it would only wait for its peer, and the error is the first
// failure's (so errors.Is(err, ErrHostWedged) tells a wedged pair).
func (h *Host) RunPair(ctx context.Context, pj PairJob) (*PairResult, error) {
	for _, j := range []Job{pj.A, pj.B} {
		if err := checkJob(j); err != nil {
			return nil, err
		}
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, fmt.Errorf("a port for the pair's link: %w", err)
	}
	endA, endB := pairEnds(port)
	hostA, jobA := h.member(pj.A, endA, pj.CPUs)
	hostB, jobB := h.member(pj.B, endB, pj.CPUs)
	hostB.clockAhead = pj.ClockAheadB
	return runPair(ctx, jobA.Entry, jobB.Entry,
		func(ctx context.Context) (*Result, error) { return hostA.Run(ctx, jobA) },
		func(ctx context.Context) (*Result, error) { return hostB.Run(ctx, jobB) },
		func(ctx context.Context) error {
			return waitListening(ctx, port, linkListenLimit, 100*time.Millisecond)
		})
}

// RunPairOnFreshHosts is RunOnFreshHosts for a pair: a pair where either
// host wedged runs again on two fresh test hosts (and a fresh link), up
// to tries times in all; every try must pass in full.
func RunPairOnFreshHosts(ctx context.Context, h *Host, pj PairJob, tries int, perTry time.Duration, rerun func(msg string)) (*PairResult, error) {
	return onFreshHosts(ctx, "two fresh test hosts", tries, perTry, rerun, func(ctx context.Context) (*PairResult, error) {
		return h.RunPair(ctx, pj)
	})
}

// linkListenLimit bounds how long host A's QEMU may take to listen: it
// opens its netdevs before the machine starts, in well under a second.
const linkListenLimit = 60 * time.Second

// runPair runs A, and B once A's end of the link listens (B's QEMU
// connects as it starts, and gives up when nothing listens).
func runPair(ctx context.Context, entryA, entryB string, runA, runB func(context.Context) (*Result, error), listening func(context.Context) error) (*PairResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type outcome struct {
		res *Result
		err error
	}
	doneA, doneB := make(chan outcome, 1), make(chan outcome, 1)
	go func() {
		r, err := runA(ctx)
		doneA <- outcome{r, err}
	}()
	listened := make(chan error, 1)
	go func() { listened <- listening(ctx) }()
	var a, b outcome
	select {
	case a = <-doneA:
		if a.err == nil {
			a.err = fmt.Errorf("it powered off (scenario status %d) before its end of the link listened", a.res.RC)
		}
		return nil, fmt.Errorf("test host A (%s): %w; host B was not started", entryA, a.err)
	case err := <-listened:
		if err != nil {
			cancel()
			a = <-doneA
			return nil, fmt.Errorf("test host A (%s): %w; host B was not started (host A: %v)", entryA, err, a.err)
		}
	}
	go func() {
		r, err := runB(ctx)
		doneB <- outcome{r, err}
	}()
	var first, second error
	fail := func(err error) {
		if first == nil {
			first = err
			cancel()
		} else {
			second = err
		}
	}
	for n := 0; n < 2; n++ {
		select {
		case a = <-doneA:
			if a.err != nil {
				fail(fmt.Errorf("test host A (%s): %w", entryA, a.err))
			}
		case b = <-doneB:
			if b.err != nil {
				fail(fmt.Errorf("test host B (%s): %w", entryB, b.err))
			}
		}
	}
	if first != nil {
		switch {
		case second != nil:
			return nil, fmt.Errorf("%w\n(stopped with it: %v)", first, second)
		case a.res != nil:
			// The other host finished: what it did may say why.
			return nil, fmt.Errorf("%w\n(test host A (%s) had finished with status %d; its console ends:\n%s)", first, entryA, a.res.RC, tail(a.res.Output, 60))
		case b.res != nil:
			return nil, fmt.Errorf("%w\n(test host B (%s) had finished with status %d; its console ends:\n%s)", first, entryB, b.res.RC, tail(b.res.Output, 60))
		}
		return nil, first
	}
	return &PairResult{A: a.res, B: b.res}, nil
}

// freeLoopbackPort picks a TCP port nothing listens on now. QEMU binds it
// a moment later; another process taking it meanwhile makes host A's
// QEMU fail to start, which the run reports.
func freeLoopbackPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening returns once a socket listens on 127.0.0.1:port, as
// /proc/net/tcp says. Connecting to find out would not do: QEMU's
// listening netdev takes the first connection as its peer.
func waitListening(ctx context.Context, port int, limit, every time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		if b, err := os.ReadFile("/proc/net/tcp"); err == nil && listensOn(string(b), port) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listened on 127.0.0.1:%d (its end of the link) within %v", port, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(every):
		}
	}
}

// listensOn reports whether the /proc/net/tcp text lists a socket in
// state LISTEN (0A) on 127.0.0.1:port or on any address at port.
func listensOn(procNetTCP string, port int) bool {
	p := fmt.Sprintf("%04X", port)
	for _, line := range strings.Split(procNetTCP, "\n") {
		f := strings.Fields(line)
		// sl local_address rem_address st ...
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		addr, lport, ok := strings.Cut(f[1], ":")
		if !ok || lport != p {
			continue
		}
		if addr == "0100007F" || addr == "00000000" {
			return true
		}
	}
	return false
}

// PairHost returns the nested test host that runs pairs: b itself when it
// is one, otherwise a new one (which needs QEMU): two hosts with kernels
// and clocks of their own need two machines even where this one has a
// hardware /dev/kvm.
func PairHost(b Backend, fx *fixture.Fixture) (*Host, error) {
	if h, ok := b.(*Host); ok {
		return h, nil
	}
	return NewHost(fx, "a pair of hosts always runs as two nested test hosts (single hosts run on: "+b.Describe()+")")
}
