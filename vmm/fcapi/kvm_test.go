package fcapi

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// console collects a guest's serial output.
type console struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (c *console) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.Write(p)
}

func (c *console) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b.String()
}

// lastTick is the counter of the last complete tick line, or -1.
func (c *console) lastTick() int64 { return tinyguest.LastTick(c.String()) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBootPauseSnapshotLoad drives a tiny guest through the whole
// Firecracker flow on this machine's /dev/kvm: configure piece by piece,
// InstanceStart, console output, pause, snapshot, and a load of that
// snapshot into a fresh server whose guest counts on from where it was.
func TestBootPauseSnapshotLoad(t *testing.T) {
	tinyguest.RequireKVM(t)
	dir := t.TempDir()
	kernel, err := tinyguest.BuildCounter(dir, tinyguest.CounterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var cons console
	started := make(chan *vmm.VM, 1)
	c := serve(t, New(Options{ID: "first", Console: &cons, OnStart: func(vm *vmm.VM) { started <- vm }}))
	disk := file(t, "data.img", 1<<20)
	metrics := filepath.Join(dir, "metrics.json")
	c.ok("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 32}`)
	c.ok("PUT", "/boot-source", `{"kernel_image_path": "`+kernel+`"}`)
	c.ok("PUT", "/drives/data", `{"drive_id": "data", "path_on_host": "`+disk+`", "is_root_device": false}`)
	c.ok("PUT", "/metrics", `{"metrics_path": "`+metrics+`"}`)
	logFile := filepath.Join(dir, "fc.log")
	c.ok("PUT", "/logger", `{"log_path": "`+logFile+`", "level": "info", "show_level": true}`)
	c.ok("PUT", "/balloon", `{"amount_mib": 0, "deflate_on_oom": false, "stats_polling_interval_s": 1}`)
	// A custom CPU template that hides LAHF/SAHF, which the counter guest does not use.
	c.ok("PUT", "/cpu-config", `{"cpuid_modifiers": [{"leaf": "0x80000001", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ecx", "bitmap": "0b0"}]}]}`)
	c.ok("PUT", "/actions", `{"action_type": "InstanceStart"}`)
	vm := <-started
	if tm := vm.CPUTemplate(); tm == nil || len(tm.CPUID) != 1 || tm.CPUID[0].Leaf != 0x80000001 {
		t.Errorf("the VM started with CPU template %+v, want the one PUT to /cpu-config", tm)
	}
	var closeOnce sync.Once
	closeVM := func() { closeOnce.Do(func() { vm.Close() }) }
	t.Cleanup(closeVM)

	waitFor(t, "the counter's start line and a tick", func() bool {
		return strings.HasPrefix(cons.String(), tinyguest.CounterStartLine+"\n") && cons.lastTick() >= 0
	})
	logged, _ := os.ReadFile(logFile)
	if !strings.Contains(string(logged), "[first:fc_vmm:INFO] kernel loaded") {
		t.Errorf("log file lacks the monitor's \"[first:fc_vmm:INFO] kernel loaded\" line: %q", logged)
	}
	var inst InstanceInfo
	json.Unmarshal([]byte(c.ok("GET", "/", "")), &inst)
	if inst.State != "Running" || inst.ID != "first" {
		t.Errorf("GET / = %+v, want first, Running", inst)
	}
	// Post-boot rules.
	c.fault("PUT", "/boot-source", `{"kernel_image_path": "`+kernel+`"}`, msgPreBootOnly)
	c.fault("PUT", "/machine-config", `{"vcpu_count": 1, "mem_size_mib": 32}`, msgPreBootOnly)
	c.fault("PATCH", "/machine-config", `{"cpu_template": "T2"}`, msgPreBootOnly)
	c.fault("PUT", "/cpu-config", `{}`, msgPreBootOnly)
	c.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, msgPreBootOnly)
	c.fault("PUT", "/snapshot/load", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`, msgPreBootOnly)
	c.fault("PUT", "/snapshot/create", `{"snapshot_path": "/tmp/s", "mem_file_path": "/tmp/m"}`, "not paused")
	if !strings.Contains(c.ok("GET", "/vm/config", ""), `"leaf":"0x80000001"`) {
		t.Error("GET /vm/config after boot does not show the custom CPU template")
	}
	c.fault("GET", "/migration", "", "no migration") // tern's API, its 404 made a 400
	c.ok("PATCH", "/drives/data", `{"drive_id": "data", "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}}`)
	c.fault("PATCH", "/drives/nosuch", `{"drive_id": "nosuch", "rate_limiter": {"ops": {"size": 100, "refill_time": 1000}}}`, "nosuch")

	// The balloon after boot: the target changes, the statistics answer
	// with Firecracker's names, their interval is fixed.
	c.ok("PATCH", "/balloon", `{"amount_mib": 4}`)
	var b struct {
		Amount *int `json:"amount_mib"`
	}
	json.Unmarshal([]byte(c.ok("GET", "/balloon", "")), &b)
	if b.Amount == nil || *b.Amount != 4 {
		t.Errorf("GET /balloon amount_mib = %v after PATCH to 4", b.Amount)
	}
	var stats map[string]uint64
	json.Unmarshal([]byte(c.ok("GET", "/balloon/statistics", "")), &stats)
	if v, ok := stats["target_mib"]; !ok || v != 4 {
		t.Errorf("GET /balloon/statistics = %v, want target_mib 4", stats)
	}
	if _, ok := stats["actual_mib"]; !ok {
		t.Errorf("GET /balloon/statistics = %v lacks actual_mib", stats)
	}
	c.fault("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 5}`, "cannot change the statistics interval")
	c.fault("PATCH", "/balloon/statistics", `{"stats_polling_interval_s": 0}`, "cannot be turned on or off after boot")

	// Ctrl+Alt+Del reaches the running VM (the counter guest ignores the
	// keys); a drive's backing file is swapped for another, and a missing
	// one is refused naming it.
	c.ok("PUT", "/actions", `{"action_type": "SendCtrlAltDel"}`)
	if b, _ := os.ReadFile(logFile); !strings.Contains(string(b), "sent Ctrl+Alt+Del") {
		t.Errorf("the log file does not say Ctrl+Alt+Del was sent:\n%s", b)
	}
	bigger := file(t, "data2.img", 2<<20)
	c.ok("PATCH", "/drives/data", `{"drive_id": "data", "path_on_host": "`+bigger+`"}`)
	missing := filepath.Join(dir, "nosuch.img")
	c.fault("PATCH", "/drives/data", `{"drive_id": "data", "path_on_host": "`+missing+`"}`, missing)

	c.ok("PUT", "/actions", `{"action_type": "FlushMetrics"}`)
	line, err := os.ReadFile(metrics)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil || !bytes.HasSuffix(line, []byte("}\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("metrics file %q is not one JSON line: %v", line, err)
	}
	var puts map[string]uint64
	json.Unmarshal(m["put_api_requests"], &puts)
	// Before the flush: machine-config, boot-source, drive, metrics,
	// logger, balloon (not one of Firecracker's counters), InstanceStart,
	// and the refused post-boot PUTs above.
	if puts["machine_cfg_count"] != 2 || puts["machine_cfg_fails"] != 1 || puts["boot_source_count"] != 2 || puts["boot_source_fails"] != 1 ||
		puts["drive_count"] != 1 || puts["metrics_count"] != 1 || puts["logger_count"] != 1 || puts["actions_count"] < 2 || puts["actions_fails"] < 1 {
		t.Errorf("put_api_requests = %v", puts)
	}
	if _, ok := m["block_data"]; !ok {
		t.Errorf("metrics lack the drive's group block_data: %s", line)
	}
	c.ok("PATCH", "/vm", `{"state": "Paused"}`)
	json.Unmarshal([]byte(c.ok("GET", "/", "")), &inst)
	if inst.State != "Paused" {
		t.Errorf("GET / state = %q after pausing", inst.State)
	}
	paused := cons.lastTick()
	time.Sleep(100 * time.Millisecond)
	if now := cons.lastTick(); now != paused {
		t.Errorf("the paused guest ticked on: %#x then %#x", paused, now)
	}
	snap, mem := filepath.Join(dir, "vm.snap"), filepath.Join(dir, "vm.mem")
	c.ok("PUT", "/snapshot/create", `{"snapshot_type": "Full", "snapshot_path": "`+snap+`", "mem_file_path": "`+mem+`"}`)
	if st, err := os.Stat(mem); err != nil || st.Size() < 32<<20 {
		t.Errorf("memory file: %v (want at least the guest's 32 MiB)", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".tern-snapshot-*")); len(left) != 0 {
		t.Errorf("snapshot left its working directory behind: %v", left)
	}
	c.ok("PATCH", "/vm", `{"state": "Resumed"}`)
	waitFor(t, "a tick after resuming", func() bool { return cons.lastTick() > paused })
	closeVM() // releases the disk's lock for the load

	// A fresh server loads the snapshot: the guest goes on counting from
	// where it was paused, without starting again.
	var cons2 console
	started2 := make(chan *vmm.VM, 1)
	c2 := serve(t, New(Options{ID: "second", Console: &cons2, OnStart: func(vm *vmm.VM) { started2 <- vm }}))
	c2.fault("PUT", "/snapshot/load", `{"snapshot_path": "`+snap+`", "mem_backend": {"backend_type": "File", "backend_path": "`+filepath.Join(dir, "nosuch")+`"}}`, "no such file")
	c2.fault("PUT", "/snapshot/load", `{"snapshot_path": "`+snap+`", "mem_file_path": "`+mem+`",
		"network_overrides": [{"iface_id": "eth0", "host_dev_name": "tap9"}]}`, `iface_id "eth0" matches none of the snapshot's interfaces`)
	c2.fault("PUT", "/snapshot/load", `{"snapshot_path": "`+snap+`", "mem_file_path": "`+mem+`",
		"vsock_override": {"uds_path": "`+filepath.Join(dir, "v.sock")+`"}}`, "no vsock device")
	c2.ok("PUT", "/snapshot/load", `{"snapshot_path": "`+snap+`", "mem_backend": {"backend_type": "File", "backend_path": "`+mem+`"}}`)
	vm2 := <-started2
	t.Cleanup(func() { vm2.Close() })
	json.Unmarshal([]byte(c2.ok("GET", "/", "")), &inst)
	if inst.State != "Paused" {
		t.Errorf("GET / state = %q after a load without resume_vm, want Paused", inst.State)
	}
	c2.fault("PUT", "/actions", `{"action_type": "InstanceStart"}`, msgPreBootOnly)
	if !strings.Contains(c2.ok("GET", "/vm/config", ""), `"leaf":"0x80000001"`) {
		t.Error("GET /vm/config after the load does not show the snapshot's custom CPU template")
	}
	c2.ok("PATCH", "/vm", `{"state": "Resumed"}`)
	waitFor(t, "the loaded guest's ticks", func() bool { return cons2.lastTick() > paused })
	if strings.Contains(cons2.String(), tinyguest.CounterStartLine) {
		t.Errorf("the loaded guest started over: %q", cons2.String())
	}
	if first := tinyguest.FirstTick(cons2.String()); first <= paused {
		t.Errorf("the loaded guest's first tick %#x is not past the snapshot's %#x", first, paused)
	}
}
