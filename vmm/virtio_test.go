package vmm

import (
	"testing"

	"github.com/ternvm/tern/boot/acpi"
)

func TestVirtioCmdlineFollowsTheKernelsSyntax(t *testing.T) {
	// Documentation/admin-guide/kernel-parameters.txt:
	// virtio_mmio.device=<size>@<baseaddr>:<irq>[:<id>]
	got := virtioCmdline([]acpi.VirtioDevice{
		{Addr: 0xd0000000, Size: 0x1000, IRQ: 5},
		{Addr: 0xd0001000, Size: 0x1000, IRQ: 6},
	})
	want := "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6"
	if got != want {
		t.Errorf("virtioCmdline = %q, want %q", got, want)
	}
}

func TestACPIDisabled(t *testing.T) {
	for cmdline, want := range map[string]bool{
		"console=ttyS0 acpi=off":       true,
		"acpi=off":                     true,
		"console=ttyS0":                false,
		"console=ttyS0 acpi=offline x": false,
		"":                             false,
	} {
		if got := acpiDisabled(cmdline); got != want {
			t.Errorf("acpiDisabled(%q) = %v, want %v", cmdline, got, want)
		}
	}
}

func TestOrderedDisksPutsRootFirst(t *testing.T) {
	in := []DiskConfig{{Root: false}, {Root: true}, {Root: false}}
	in[0].Path, in[1].Path, in[2].Path = "a", "root", "c"
	out := orderedDisks(in)
	if out[0].Path != "root" || out[1].Path != "a" || out[2].Path != "c" {
		t.Errorf("orderedDisks = %v, %v, %v; want root, a, c", out[0].Path, out[1].Path, out[2].Path)
	}
	if rootCmdline(in) != "root=/dev/vda rw" {
		t.Errorf("rootCmdline = %q", rootCmdline(in))
	}
	in[1].ReadOnly = true
	if rootCmdline(in) != "root=/dev/vda ro" {
		t.Errorf("rootCmdline for a read-only root = %q", rootCmdline(in))
	}
}
