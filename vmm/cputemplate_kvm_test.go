package vmm_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternvm/tern/boot/cputemplate"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/migrate"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// cpuidRound is how long the cpuid guest waits between rounds, in loop
// iterations: a round every few tens of milliseconds here.
const cpuidRound = 20000

// leafKey is a CPUID leaf and subleaf.
type leafKey struct{ leaf, subleaf uint32 }

// guestCPUID reads the cpuid guest's console: what CPUID returned in the
// guest, the last line of each leaf; complete is whether every leaf of
// the guest's table has a line.
func guestCPUID(out string) (regs map[leafKey][4]uint32, complete bool) {
	regs = map[leafKey][4]uint32{}
	lines := strings.Split(out, "\n")
	for _, l := range lines[:len(lines)-1] { // the last may be cut short
		var k leafKey
		var r [4]uint32
		if n, _ := fmt.Sscanf(l, tinyguest.CPUIDPrefix+"%x %x %x %x %x %x", &k.leaf, &k.subleaf, &r[0], &r[1], &r[2], &r[3]); n == 6 {
			regs[k] = r
		}
	}
	for _, k := range tinyguest.CPUIDLeaves {
		if _, ok := regs[leafKey{k[0], k[1]}]; !ok {
			return regs, false
		}
	}
	return regs, true
}

// waitCPUID waits for a round of the guest's CPUID lines printed after
// the console's first skip bytes.
func waitCPUID(t *testing.T, r *running, skip int) map[leafKey][4]uint32 {
	t.Helper()
	var regs map[leafKey][4]uint32
	waitFor(t, "a round of CPUID lines", func() bool {
		out := r.cons.String()
		var ok bool
		regs, ok = guestCPUID(out[min(skip, len(out)):])
		return ok
	})
	return regs
}

func startCPUIDGuest(t *testing.T, tmpl *cputemplate.Template) *running {
	t.Helper()
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildCPUID(t.TempDir(), cpuidRound)
	if err != nil {
		t.Fatal(err)
	}
	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, CPUs: 1, MemoryBytes: guestRAM, Console: cons, Logger: log, CPUTemplate: tmpl})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, v, cons, hook)
}

// hostVendor is CPUID leaf 0's vendor as this host's KVM reports it.
func hostVendor(t *testing.T) string {
	t.Helper()
	sys, err := kvm.Open(vmm.DefaultKVMPath)
	if err != nil {
		t.Skipf("no /dev/kvm: %v", err)
	}
	defer sys.Close()
	es, err := sys.SupportedCPUID()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Function == 0 {
			return vendorString(e.EBX, e.EDX, e.ECX)
		}
	}
	t.Fatal("KVM reports no CPUID leaf 0")
	return ""
}

func vendorString(regs ...uint32) string {
	var b []byte
	for _, r := range regs {
		b = append(b, byte(r), byte(r>>8), byte(r>>16), byte(r>>24))
	}
	return string(b)
}

// hostTemplate is the static template for this host's vendor: T2S (the
// one with an MSR) on Intel, T2A on AMD.
func hostTemplate(t *testing.T) (name, other string) {
	switch v := hostVendor(t); v {
	case "GenuineIntel":
		return "T2S", "T2A"
	case "AuthenticAMD":
		return "T2A", "T2"
	default:
		t.Skipf("host CPU vendor %q has no static template", v)
	}
	return "", ""
}

// onPVM is whether this host's KVM is PVM, which fills leaf 1 ECX/EDX,
// leaf 7 and leaf 0xd from the host whatever the VMM sets: there a
// template shows only in the other leaves, and tern warns.
func onPVM() bool { return kvm.DetectBackend(vmm.DefaultKVMPath).Kind == kvm.BackendPVM }

// What a guest under T2S or T2A sees, from Firecracker's template
// descriptions: family 6 model 0x3f stepping 2; PREFETCHW (0x80000001
// ECX 8) and 1 GiB pages (0x80000001 EDX 26) hidden; where the backend
// honours them, AVX-512F (leaf 7 EBX 16) hidden, ERMS (leaf 7 EBX 9)
// shown, XSAVEC, XGETBV1, XSAVES (0xd.1 EAX 1-3) hidden.
func checkT2Family(t *testing.T, r *running, regs map[leafKey][4]uint32) {
	t.Helper()
	if sig := regs[leafKey{1, 0}][0] & 0x0fff3fff; sig != 0x000306f2 {
		t.Errorf("guest's leaf 1 EAX signature %#x, want 0x306f2", sig)
	}
	if c := regs[leafKey{0x80000001, 0}][2]; c&(1<<8) != 0 {
		t.Errorf("guest's leaf 0x80000001 ECX %#x shows PREFETCHW", c)
	}
	if d := regs[leafKey{0x80000001, 0}][3]; d&(1<<26) != 0 {
		t.Errorf("guest's leaf 0x80000001 EDX %#x shows 1 GiB pages", d)
	}
	warned := ""
	for _, e := range r.log.AllEntries() {
		if strings.Contains(e.Message, "does not show the guest the CPU template") {
			warned = e.Message
		}
	}
	if onPVM() {
		t.Logf("PVM: leaves 1 (ECX/EDX), 7 and 0xd are the host's; tern warned: %s", warned)
		if !strings.Contains(warned, "leaf 0x7.0 ebx") {
			t.Errorf("no warning naming leaf 0x7.0 ebx on PVM (got %q)", warned)
		}
		return
	}
	if warned != "" {
		t.Errorf("tern warned %q", warned)
	}
	if b := regs[leafKey{7, 0}][1]; b&(1<<16) != 0 || b&(1<<9) == 0 {
		t.Errorf("guest's leaf 7 EBX %#x: want AVX-512F (16) clear, ERMS (9) set", b)
	}
	if a := regs[leafKey{0xd, 1}][0]; a&0xe != 0 {
		t.Errorf("guest's leaf 0xd.1 EAX %#x shows XSAVEC/XGETBV1/XSAVES", a)
	}
}

// TestCPUTemplateShowsInTheGuest boots the cpuid guest with and without
// the static template for this host and reads what CPUID returns inside.
func TestCPUTemplateShowsInTheGuest(t *testing.T) {
	name, _ := hostTemplate(t)
	tmpl, err := cputemplate.Static(name)
	if err != nil {
		t.Fatal(err)
	}
	plain := startCPUIDGuest(t, nil)
	stock := waitCPUID(t, plain, 0)
	plain.vm.Stop()
	plain.wait(t)

	tr := startCPUIDGuest(t, tmpl)
	templated := waitCPUID(t, tr, 0)
	checkT2Family(t, tr, templated)
	if stock[leafKey{0, 0}] != templated[leafKey{0, 0}] {
		t.Errorf("leaf 0 (vendor) changed: %x -> %x", stock[leafKey{0, 0}], templated[leafKey{0, 0}])
	}
	if stock[leafKey{1, 0}][0]&0x0fff3fff == 0x000306f2 {
		t.Logf("this host's own signature is the template's; the change shows in other bits")
	} else if stock[leafKey{1, 0}][0] == templated[leafKey{1, 0}][0] {
		t.Errorf("leaf 1 EAX is %#x with and without %s", stock[leafKey{1, 0}][0], name)
	}
	if stock[leafKey{0x80000001, 0}][2]&(1<<8) == 0 {
		t.Logf("this host has no PREFETCHW to hide")
	}
	// Bits the template leaves alone keep the host's value: SSE3 (leaf 1
	// ECX 0), AVX2 (leaf 7 EBX 5) and LAHF/SAHF (0x80000001 ECX 0) are
	// in no static template.
	for _, b := range []struct {
		k        leafKey
		reg, bit int
		name     string
	}{{leafKey{1, 0}, 2, 0, "SSE3"}, {leafKey{7, 0}, 1, 5, "AVX2"}, {leafKey{0x80000001, 0}, 2, 0, "LAHF/SAHF"}} {
		if s, g := stock[b.k][b.reg]>>b.bit&1, templated[b.k][b.reg]>>b.bit&1; s != g {
			t.Errorf("%s is %d without the template, %d with it", b.name, s, g)
		}
	}
}

// TestCustomTemplateClearsAndSetsBits: a custom template clears
// LAHF/SAHF (0x80000001 ECX bit 0, which every x86-64 host KVM offers) and
// sets a bit nobody has (leaf 0x80000008 EBX bit 31) in what the guest's
// CPUID instruction returns.
func TestCustomTemplateClearsAndSetsBits(t *testing.T) {
	tmpl, err := cputemplate.ParseCustom([]byte(`{"cpuid_modifiers": [
		{"leaf": "0x80000001", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ecx", "bitmap": "0b0"}]},
		{"leaf": "0x80000008", "subleaf": "0x0", "flags": 0, "modifiers": [{"register": "ebx", "bitmap": "0b1xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	regs := waitCPUID(t, startCPUIDGuest(t, tmpl), 0)
	if c := regs[leafKey{0x80000001, 0}][2]; c&1 != 0 {
		t.Errorf("leaf 0x80000001 ECX %#x still shows LAHF/SAHF", c)
	}
	if b := regs[leafKey{0x80000008, 0}][1]; b&(1<<31) == 0 {
		t.Errorf("leaf 0x80000008 EBX %#x lacks bit 31", b)
	}
}

// TestTemplateForAnotherVendorIsRefused: New refuses a static template
// made for the other vendor's CPUs, naming both.
func TestTemplateForAnotherVendorIsRefused(t *testing.T) {
	_, other := hostTemplate(t)
	tmpl, _ := cputemplate.Static(other)
	elf, err := tinyguest.BuildHalt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, err = vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, MemoryBytes: guestRAM, CPUTemplate: tmpl})
	if !errors.Is(err, vmm.ErrInvalidConfig) || !strings.Contains(err.Error(), other) || !strings.Contains(err.Error(), hostVendor(t)) {
		t.Errorf("New with %s on a %s host: %v; want ErrInvalidConfig naming both", other, hostVendor(t), err)
	}
}

// TestSnapshotRestoreKeepsTheTemplate: a templated guest snapshotted and
// restored goes on seeing the templated CPUID, the restored VM reports
// the template, and a snapshot of it records the template again. On an
// Intel host the T2S template's IA32_ARCH_CAPABILITIES is checked in the
// saved vCPU state too.
func TestSnapshotRestoreKeepsTheTemplate(t *testing.T) {
	name, _ := hostTemplate(t)
	tmpl, _ := cputemplate.Static(name)
	r := startCPUIDGuest(t, tmpl)
	checkT2Family(t, r, waitCPUID(t, r, 0))
	if err := r.vm.Pause(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := r.vm.Snapshot(vmm.SnapshotOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	r.vm.Stop()
	r.wait(t)
	if sig := savedCPUID(t, dir)[leafKey{1, 0}][0] & 0x0fff3fff; sig != 0x000306f2 {
		t.Errorf("the snapshot's vCPU CPUID has signature %#x, want the template's 0x306f2", sig)
	}
	if name == "T2S" {
		// RSBA, SKIP_L1DFL_VMENTRY, IF_PSCHANGE_MC_NO, MISC_PACKAGE_CTLS,
		// ENERGY_FILTERING_CTL, FB_CLEAR, RRSBA, GDS_NO, RFDS_NO.
		const want = 1<<2 | 1<<3 | 1<<6 | 1<<10 | 1<<11 | 1<<17 | 1<<19 | 1<<26 | 1<<27
		if got, ok := savedMSR(t, dir, 0x10a); !ok || got != want {
			t.Errorf("saved IA32_ARCH_CAPABILITIES = %#x (present %v), want %#x", got, ok, want)
		}
	}

	cons := &console{}
	log, hook := newLogger()
	v, err := vmm.Restore(vmm.RestoreOptions{Dir: dir, Console: cons, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if got := v.CPUTemplate(); got.String() != name {
		t.Errorf("restored VM's template is %v, want %s", got, name)
	}
	rr := start(t, v, cons, hook)
	// Its CPUID comes from the snapshot, not from this host's KVM: the
	// restored guest's lines show the template as the first VM's did
	// (tern's warning belongs to the first VM's log).
	rr.log = r.log
	checkT2Family(t, rr, waitCPUID(t, rr, 0))
	if strings.Contains(cons.String(), tinyguest.CPUIDStartLine) {
		t.Error("the restored guest started again")
	}
	if err := v.Pause(); err != nil {
		t.Fatal(err)
	}
	again := t.TempDir()
	if _, err := v.Snapshot(vmm.SnapshotOptions{Dir: again}); err != nil {
		t.Fatal(err)
	}
	var cfg struct{ CPUTemplate *struct{ Static string } }
	readSection(t, again, "config", &cfg)
	if cfg.CPUTemplate == nil || cfg.CPUTemplate.Static != name {
		t.Errorf("the restored VM's snapshot records template %+v, want %s", cfg.CPUTemplate, name)
	}
}

func readSection(t *testing.T, dir, name string, v any) {
	t.Helper()
	sections, err := snapshot.ReadStateFile(filepath.Join(dir, vmm.SnapshotStateFile))
	if err != nil {
		t.Fatal(err)
	}
	st, err := snapshot.NewState(sections)
	if err != nil {
		t.Fatal(err)
	}
	data, err := st.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	// Only the fields the test reads: the rest of the section is not its business.
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("section %s: %v", name, err)
	}
}

// savedMSR is vCPU 0's MSR index as the snapshot in dir saved it.
func savedMSR(t *testing.T, dir string, index uint32) (uint64, bool) {
	t.Helper()
	var vs struct {
		MSRs []struct {
			Index uint32
			Data  uint64
		}
	}
	readSection(t, dir, "vcpu/0", &vs)
	for _, m := range vs.MSRs {
		if m.Index == index {
			return m.Data, true
		}
	}
	return 0, false
}

// savedCPUID is vCPU 0's CPUID as the snapshot in dir saved it (what
// KVM_GET_CPUID2 returned).
func savedCPUID(t *testing.T, dir string) map[leafKey][4]uint32 {
	t.Helper()
	var vs struct {
		CPUID []struct{ Function, Index, EAX, EBX, ECX, EDX uint32 }
	}
	readSection(t, dir, "vcpu/0", &vs)
	out := map[leafKey][4]uint32{}
	for _, e := range vs.CPUID {
		out[leafKey{e.Function, e.Index}] = [4]uint32{e.EAX, e.EBX, e.ECX, e.EDX}
	}
	return out
}

// TestMigrationKeepsTheTemplate: a templated guest migrated to another
// tern goes on seeing the templated CPUID there, and the destination VM
// reports the template (from the migration's hello and state).
func TestMigrationKeepsTheTemplate(t *testing.T) {
	name, _ := hostTemplate(t)
	tmpl, _ := cputemplate.Static(name)
	r := startCPUIDGuest(t, tmpl)
	checkT2Family(t, r, waitCPUID(t, r, 0))
	m := migrateOver(t, r, migrate.SendOptions{}, vmm.ReceiveOptions{}, nil)
	if m.err != nil || m.recvErr != nil {
		t.Fatalf("migration: send %v, receive %v", m.err, m.recvErr)
	}
	if got := m.dst.vm.CPUTemplate(); got.String() != name {
		t.Errorf("destination's template is %v, want %s", got, name)
	}
	m.dst.log = r.log // tern's warning, if any, is in the source's log
	checkT2Family(t, m.dst, waitCPUID(t, m.dst, 0))
	if strings.Contains(m.dst.cons.String(), tinyguest.CPUIDStartLine) {
		t.Error("the migrated guest started again")
	}
}

// TestTemplateKVMCapabilities: "N" in kvm_capabilities is checked on this
// host's KVM, "!N" may drop only a check tern does not rely on.
func TestTemplateKVMCapabilities(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHalt(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		caps, want string // want "" for accepted
	}{
		{`["3"]`, ""},   // KVM_CAP_USER_MEMORY: every KVM has it
		{`["!56"]`, ""}, // Firecracker's example: XCRS, which tern does not require
		{`["!0"]`, "drops the check of KVM capability 0 (KVM_CAP_IRQCHIP)"}, // KVM_CAP_IRQCHIP: tern needs it
		{`["4000000"]`, "needs KVM capability 4000000, which this host's KVM lacks"},
	} {
		tmpl, err := cputemplate.ParseCustom([]byte(`{"kvm_capabilities": ` + tc.caps + `}`))
		if err != nil {
			t.Fatal(err)
		}
		v, err := vmm.New(vmm.Config{KernelPath: elf, PreferPVH: true, MemoryBytes: guestRAM, CPUTemplate: tmpl})
		if err == nil {
			v.Close()
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.caps, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want an error with %q", tc.caps, err, tc.want)
		}
	}
}
