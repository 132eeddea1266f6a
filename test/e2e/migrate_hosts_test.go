package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/test/nested"
	"github.com/ternvm/tern/test/pki"
	"github.com/ternvm/tern/test/scenarios"
)

// pairCPUs is each test host's vCPUs in a pair: two emulated hosts share
// this machine's two cores.
const pairCPUs = 2

// clockAheadB is how far host B's clock runs ahead of host A's.
const clockAheadB = 30 * time.Second

// TestMigrateBetweenHosts: a guest counting on its console is live-migrated
// over mutual TLS from one nested test host to another (two QEMU
// processes: two kernels, two KVMs, two clocks, joined by a network). On
// host A tern migrate send completes and the source tern exits 0 saying
// the guest migrated; on host B the guest runs on with its clock on B's
// time (B's clock runs clockAheadB ahead of A's), without booting again,
// and stops on SIGTERM. Across the two
// consoles the counter goes 1, 2, 3, ... without a gap or a repeat: the
// guest went on exactly where it was paused.
func TestMigrateBetweenHosts(t *testing.T) {
	e := prepared(t)
	h, err := nested.PairHost(e.Backend, e.Fixture)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certs, err := pki.Generate(dir, []string{nested.LinkAddrA, nested.LinkAddrB})
	if err != nil {
		t.Fatal(err)
	}
	extra := map[string][]byte{}
	for name, path := range map[string]string{
		"ca.pem": certs.CA, "server.pem": certs.ServerCert, "server-key.pem": certs.ServerKey,
		"client.pem": certs.ClientCert, "client-key.pem": certs.ClientKey,
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		extra[name] = b
	}
	files, err := scenarios.Files(extra)
	if err != nil {
		t.Fatal(err)
	}
	pj := nested.PairJob{
		A:    nested.Job{Files: files, Entry: "migrate-hosts-src.sh", Tern: e.Tern},
		B:    nested.Job{Files: files, Entry: "migrate-hosts-dst.sh", Tern: e.Tern},
		CPUs: pairCPUs, ClockAheadB: clockAheadB,
	}
	start := time.Now()
	res, err := nested.RunPairOnFreshHosts(context.Background(), h, pj, hostTries, scenarioTimeout, func(msg string) {
		t.Log(msg)
		fmt.Println(msg)
	})
	if err != nil {
		t.Fatalf("pair %s + %s: %v", pj.A.Entry, pj.B.Entry, err)
	}
	took := time.Since(start).Round(time.Millisecond)
	outA := strings.ReplaceAll(res.A.Output, "\r", "")
	outB := strings.ReplaceAll(res.B.Output, "\r", "")
	t.Logf("pair finished in %v with status %d on host A and %d on host B", took, res.A.RC, res.B.RC)
	t.Logf("host A (%s):\n%s", pj.A.Entry, outA)
	t.Logf("host B (%s):\n%s", pj.B.Entry, outB)

	for _, s := range []struct {
		host, entry, out string
		rc               int
	}{{"A", pj.A.Entry, outA, res.A.RC}, {"B", pj.B.Entry, outB, res.B.RC}} {
		if s.rc != 0 {
			t.Errorf("host %s: scenario %s exited %d, want 0", s.host, s.entry, s.rc)
		}
		checks := regexp.MustCompile(`(?m)^SCENARIO-CHECK (ok|FAIL) (.*)$`).FindAllStringSubmatch(s.out, -1)
		if len(checks) == 0 {
			t.Errorf("host %s: scenario %s printed no SCENARIO-CHECK line", s.host, s.entry)
		}
		for _, c := range checks {
			if c[1] != "ok" {
				t.Errorf("host %s: check failed: %s", s.host, c[2])
			}
		}
		if !strings.Contains(s.out, "\nSCENARIO-RESULT ok\n") {
			t.Errorf("host %s: scenario %s did not report SCENARIO-RESULT ok", s.host, s.entry)
		}
	}
	checkRun(t, outA, expectedRun{"src", "1"}, e.Fixture.KernelVersion)

	if m := regexp.MustCompile(`(?m)^SCENARIO-MIGRATION-STATUS (.*)$`).FindStringSubmatch(outA); m != nil {
		var st struct {
			Phase            string  `json:"phase"`
			Round            int     `json:"round"`
			BytesTransferred uint64  `json:"bytes_transferred"`
			DowntimeMS       float64 `json:"downtime_ms"`
			TotalTimeMS      float64 `json:"total_time_ms"`
		}
		if err := json.Unmarshal([]byte(m[1]), &st); err != nil {
			t.Errorf("send's final status is not JSON: %v: %q", err, m[1])
		} else {
			t.Logf("migration between the test hosts: %s, %d rounds, %d bytes, downtime %.1f ms, total %.0f ms (emulator timings)",
				st.Phase, st.Round, st.BytesTransferred, st.DowntimeMS, st.TotalTimeMS)
		}
	} else {
		t.Error("host A printed no SCENARIO-MIGRATION-STATUS line")
	}

	// Host B's clock check says more than host A's only when the two
	// clocks differ: B's, read after A's, must be at least clockAheadB on.
	clockA := regexp.MustCompile(`(?m)^SCENARIO-CLOCK src host=(\d+) guest=(\d+)$`).FindStringSubmatch(outA)
	clockB := regexp.MustCompile(`(?m)^SCENARIO-CLOCK dst host=(\d+) guest=(\d+)$`).FindStringSubmatch(outB)
	if clockA == nil || clockB == nil {
		t.Error("host A or host B printed no SCENARIO-CLOCK line")
	} else {
		hostA, _ := strconv.ParseInt(clockA[1], 10, 64)
		hostB, _ := strconv.ParseInt(clockB[1], 10, 64)
		t.Logf("clocks: host A %d (guest %s) before the migration, host B %d (guest %s) after it", hostA, clockA[2], hostB, clockB[2])
		if ahead := time.Duration(hostB-hostA) * time.Second; ahead < clockAheadB-2*time.Second {
			t.Errorf("host B's clock was only %v past host A's, want at least %v: the hosts' clocks did not differ", ahead, clockAheadB)
		}
	}

	// The counter across the two consoles: the first value on host B is
	// the one after the last on host A.
	consoleA := prefixedLines(outA, "[src guest] ")
	consoleB := prefixedLines(outB, "[dst guest] ")
	whole := regexp.MustCompile(`(?m)^SCENARIO-CONSOLE-END src last-line-whole=(yes|no)$`).FindStringSubmatch(outA)
	if whole == nil {
		t.Fatal("host A did not say whether its console's last line was whole (SCENARIO-CONSOLE-END)")
	}
	before, after := counterAcross(consoleA, consoleB, whole[1] == "no")
	t.Logf("counter on host A: %v; on host B: %v", before, after)
	if len(before) < 5 || len(after) < 4 {
		t.Errorf("the counter reached %d values on host A and %d on host B, want at least 5 and 4", len(before), len(after))
	}
	if len(before) > 0 && len(after) > 0 && after[0] != before[len(before)-1]+1 {
		t.Errorf("host B's first counter is %d, want %d: the one after host A's last", after[0], before[len(before)-1]+1)
	}
	if bad := notConsecutive(append(append([]int{}, before...), after...)); bad != "" {
		t.Errorf("the counter across host A's and host B's consoles does not go 1, 2, 3, ...: %s", bad)
	}
}

// prefixedLines returns the lines of out that start with prefix, without it.
func prefixedLines(out, prefix string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			lines = append(lines, rest)
		}
	}
	return lines
}

var counterLine = regexp.MustCompile(`TERN-GUEST counter=(\d+) date=\d+`)

// counterAcross returns the counter values on the source's console and on
// the destination's. When the source's last line was cut (the guest was
// paused in the middle of it), the destination's first line is its rest:
// the two are joined and the value counts as the source's, where it
// began.
func counterAcross(src, dst []string, srcCut bool) (before, after []int) {
	src = append([]string{}, src...)
	dst = append([]string{}, dst...)
	if srcCut && len(src) > 0 && len(dst) > 0 {
		src[len(src)-1] += dst[0]
		dst = dst[1:]
	}
	values := func(lines []string) []int {
		var v []int
		for _, l := range lines {
			if m := counterLine.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				v = append(v, n)
			}
		}
		return v
	}
	return values(src), values(dst)
}

// notConsecutive says what breaks 1, 2, 3, ... in v ("" when nothing).
func notConsecutive(v []int) string {
	if len(v) == 0 {
		return "no values"
	}
	for i, n := range v {
		if n != i+1 {
			return fmt.Sprintf("value %d is %d, want %d (%v)", i+1, n, i+1, v)
		}
	}
	return ""
}

// A guest paused in the middle of a counter line leaves its start on the
// source's console and its rest on the destination's: joined, it is one
// value, neither lost nor counted twice.
func TestCounterAcrossConsoles(t *testing.T) {
	src := []string{"TERN-GUEST uname=6.1", "TERN-GUEST counter=1 date=100", "TERN-GUEST counter=2 date=101", "TERN-GUEST counter=3 da"}
	dst := []string{"te=102", "TERN-GUEST counter=4 date=103"}
	before, after := counterAcross(src, dst, true)
	if fmt.Sprint(before) != "[1 2 3]" || fmt.Sprint(after) != "[4]" {
		t.Errorf("cut line: %v then %v, want [1 2 3] then [4]", before, after)
	}
	whole := []string{"TERN-GUEST counter=1 date=100", "TERN-GUEST counter=2 date=101"}
	before, after = counterAcross(whole, []string{"TERN-GUEST counter=3 date=102"}, false)
	if fmt.Sprint(before) != "[1 2]" || fmt.Sprint(after) != "[3]" {
		t.Errorf("whole lines: %v then %v, want [1 2] then [3]", before, after)
	}
	if notConsecutive([]int{1, 2, 3}) != "" || notConsecutive([]int{1, 2, 4}) == "" || notConsecutive([]int{1, 2, 2, 3}) == "" || notConsecutive(nil) == "" {
		t.Error("notConsecutive misjudges a sequence")
	}
}
