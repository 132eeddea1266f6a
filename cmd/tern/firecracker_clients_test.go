package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
)

// Boots shaped as the orchestrators that drive Firecracker shape them,
// each with a tiny guest on this machine's /dev/kvm.

// TestFirecrackerFlintlockShapedBoot starts tern as flintlock starts
// Firecracker (infrastructure/firecracker/create.go): "--id ID
// --boot-timer --no-api --config-file F --metadata M", stdin empty,
// stdout and stderr to files, the log and metrics files created
// beforehand, and the configuration file in the shape flintlock writes
// (its VmmConfig: a root drive with cache_type, machine-config with smt
// and track_dirty_pages, an empty network-interfaces list, the logger at
// Debug with level and origin shown, metrics).
func TestFirecrackerFlintlockShapedBoot(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildHello(dir)
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs.img")
	logPath, metricsPath := filepath.Join(dir, "firecracker.log"), filepath.Join(dir, "firecracker.metrics")
	for _, p := range []string{root, logPath, metricsPath} {
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Truncate(root, 1<<20)
	cfg := map[string]any{
		"drives": []map[string]any{{
			"drive_id": "root", "path_on_host": root, "is_root_device": true, "is_read_only": false, "cache_type": "Unsafe",
		}},
		"boot-source":        map[string]any{"kernel_image_path": kernel, "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
		"logger":             map[string]any{"log_path": logPath, "level": "Debug", "show_level": true, "show_log_origin": true},
		"machine-config":     map[string]any{"vcpu_count": 1, "mem_size_mib": 32, "smt": false, "track_dirty_pages": false},
		"metrics":            map[string]any{"metrics_path": metricsPath},
		"network-interfaces": []any{},
	}
	cfgPath, metaPath := filepath.Join(dir, "firecracker.cfg"), filepath.Join(dir, "metadata.json")
	b, _ := json.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o600)
	os.WriteFile(metaPath, []byte(`{"latest": {"instance-id": "flint-1"}}`), 0o600)
	const uid = "7b0f0c1e"
	_, noSeccomp := fcSeccomp(t)
	argv := append([]string{"firecracker", "--id", uid, "--boot-timer", "--no-api", "--config-file", cfgPath}, noSeccomp...)
	argv = append(argv, "--metadata", metaPath)
	code, out, errOut := runFirecracker(t, argv...)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errOut)
	}
	if out != tinyguest.HelloLine+"\n" {
		t.Errorf("stdout (the console) = %q, want the guest's line", out)
	}
	logged, _ := os.ReadFile(logPath)
	// Debug level, the level and the origin shown: [ID:THREAD:LEVEL:FILE:LINE].
	origin := regexp.MustCompile(`(?m)^\S+ \[` + uid + `:fc_vmm:(INFO|DEBUG):[^:\]]+\.go:\d+\] `)
	if !origin.Match(logged) {
		t.Errorf("the log file has no line with the level and origin shown:\n%s", logged)
	}
	if !bytes.Contains(logged, []byte("boot-time")) {
		t.Errorf("the log file lacks the boot time the guest signalled (--boot-timer):\n%s", logged)
	}
	lines := bytes.Split(bytes.TrimSpace(mustRead(t, metricsPath)), []byte("\n"))
	var m map[string]json.RawMessage
	if err := json.Unmarshal(lines[len(lines)-1], &m); err != nil {
		t.Fatalf("the metrics file's last line: %q: %v", lines[len(lines)-1], err)
	}
	if _, ok := m["block_root"]; !ok {
		t.Errorf("the metrics at exit lack the root drive's group block_root: %s", lines[len(lines)-1])
	}
	var vcpu map[string]int64
	json.Unmarshal(m["vcpu"], &vcpu)
	if n := vcpu["exit_io_out"]; n < int64(len(tinyguest.HelloLine)) {
		t.Errorf("vcpu.exit_io_out = %d; the guest wrote its %d-byte line a byte at a time", n, len(tinyguest.HelloLine)+1)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFirecrackerKataShapedBoot starts tern as Kata Containers starts
// Firecracker: "--api-sock S --id ID --config-file F", the log and the
// metrics on FIFOs whose read ends Kata opens (non-blocking) before it
// starts the process, then polls GET / until the instance says Running.
func TestFirecrackerKataShapedBoot(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	logFIFO, metricsFIFO := filepath.Join(dir, "fc-log.fifo"), filepath.Join(dir, "fc-metrics.fifo")
	var readers []*os.File
	for _, p := range []string{logFIFO, metricsFIFO} {
		if err := syscall.Mkfifo(p, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		readers = append(readers, r)
	}
	sock, console := filepath.Join(dir, "fc.sock"), filepath.Join(dir, "console")
	cfg := `{
  "boot-source": {"kernel_image_path": "` + kernel + `", "boot_args": "console=ttyS0 reboot=k panic=1 pci=off"},
  "drives": [],
  "machine-config": {"vcpu_count": 1, "mem_size_mib": 32, "smt": false},
  "vsock": {"guest_cid": 3, "uds_path": "` + filepath.Join(dir, "kata.hvsock") + `"},
  "serial": {"serial_out_path": "` + console + `"},
  "logger": {"log_path": "` + logFIFO + `", "level": "Info", "show_level": true},
  "metrics": {"metrics_path": "` + metricsFIFO + `"}
}`
	cfgPath := filepath.Join(dir, "fcConfig.json")
	os.WriteFile(cfgPath, []byte(cfg), 0o600)
	_, noSeccomp := fcSeccomp(t)
	p := startFirecracker(t, append([]string{"firecracker", "--api-sock", sock, "--id", "kata-sandbox", "--config-file", cfgPath}, noSeccomp...)...)
	var info struct {
		ID, State string
	}
	// Kata's waitVMMRunning: GET / until "Running".
	waitUntil(t, "GET / to say Running", func() bool {
		out, err := apiCall(sock, "GET", "/", "")
		return err == nil && json.Unmarshal([]byte(out), &info) == nil && info.State == "Running"
	})
	if info.ID != "kata-sandbox" {
		t.Errorf("GET / id = %q", info.ID)
	}
	waitUntil(t, "the guest's ticks", func() bool { return lastTickIn(console) >= 0 })
	if _, err := apiCall(sock, "PUT", "/actions", `{"action_type": "FlushMetrics"}`); err != nil {
		t.Fatal(err)
	}
	read := func(r *os.File) string {
		var all []byte
		buf := make([]byte, 1<<16)
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
			r.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, _ := r.Read(buf)
			all = append(all, buf[:n]...)
			if n == 0 && bytes.HasSuffix(all, []byte("\n")) {
				break
			}
		}
		return string(all)
	}
	logged, metrics := read(readers[0]), read(readers[1])
	if !regexp.MustCompile(`(?m)^\S+ \[kata-sandbox:fc_vmm:INFO\] `).MatchString(logged) {
		t.Errorf("the log FIFO has no line of Firecracker's format at Info:\n%s", logged)
	}
	var m map[string]json.RawMessage
	if lines := strings.Split(strings.TrimSpace(metrics), "\n"); json.Unmarshal([]byte(lines[len(lines)-1]), &m) != nil || m["vcpu"] == nil {
		t.Errorf("the metrics FIFO has no JSON line with vcpu counters: %q", metrics)
	}
	p.Process.Signal(syscall.SIGTERM)
	if code := exitCode(t, p); code != 128+int(syscall.SIGTERM) {
		t.Errorf("after SIGTERM tern exited %d", code)
	}
}
