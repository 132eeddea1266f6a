package vmm

import (
	"fmt"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/acpi"
	"github.com/ternvm/tern/migrate/snapshot"
	"github.com/ternvm/tern/vmm/memory"
)

// What tern's own sections hold at most, with room to spare: a snapshot
// of a running guest has config sections of about 6 KB (most of it the
// host's CPUID), a vm section of 3 KB, vCPU sections under 20 KB (CPUID,
// MSRs and the XSAVE area) and device sections under 2 KB. No array is
// longer than KVM's CPUID or MSR lists (a few hundred entries) and nothing
// nests deeper than a few levels. Checked before decoding, these bound
// what a hostile state file or migration stream can make a reader build,
// whatever inflating JSON it holds.
var (
	configLimits = snapshot.JSONLimits{MaxBytes: 256 << 10, MaxElems: 1024, MaxDepth: 16}
	vmLimits     = snapshot.JSONLimits{MaxBytes: 64 << 10, MaxElems: 1024, MaxDepth: 16}
	vcpuLimits   = snapshot.JSONLimits{MaxBytes: 256 << 10, MaxElems: 1024, MaxDepth: 16}
	deviceLimits = snapshot.JSONLimits{MaxBytes: 64 << 10, MaxElems: 1024, MaxDepth: 16}
	// helloLimits bound a migration's description of the VM: the
	// configuration and each vCPU's CPUID (the protocol bounds the
	// message at 1 MiB).
	helloLimits = snapshot.JSONLimits{MaxBytes: 1 << 20, MaxElems: 1024, MaxDepth: 16}
)

// memoryLimits bound the memory section of a guest of memBytes: its one
// long array is a diff's dirty bitmap, a word per 64 pages, each at most
// 20 digits and a comma.
func memoryLimits(memBytes uint64) snapshot.JSONLimits {
	words := (memBytes/memory.PageSize + 63) / 64
	return snapshot.JSONLimits{MaxBytes: 64<<10 + 21*int(words), MaxElems: max(1024, int(words)), MaxDepth: 16}
}

// maxVirtioDevices is how many virtio devices a VM can have: each needs
// an IOAPIC pin of its own, from boot.FirstVirtioIRQ on.
const maxVirtioDevices = acpi.IOAPICPins - boot.FirstVirtioIRQ

// virtioDevices is how many virtio devices the configuration makes (see
// addConfiguredVirtio): a restore's device sections must be as many.
func (c snapshotConfig) virtioDevices() int {
	n := len(c.Disks) + len(c.Nets)
	for _, has := range []bool{c.Vsock != nil, c.Balloon != nil, c.RNG} {
		if has {
			n++
		}
	}
	return n
}

func checkDeviceCount(c snapshotConfig) error {
	if n := c.virtioDevices(); n > maxVirtioDevices {
		return fmt.Errorf("%d virtio devices (tern supports at most %d)", n, maxVirtioDevices)
	}
	return nil
}
