package kvm

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// APIVersion is the only KVM_GET_API_VERSION answer the stable KVM API has
// ever had (KVM_API_VERSION).
const APIVersion = 12

// System is an open /dev/kvm: the handle for host-wide queries and for
// creating VMs.
type System struct {
	h *fdHandle
}

// Open opens the KVM device at path (normally "/dev/kvm") read-write and
// close-on-exec. Errors wrap the os error, so errors.Is(err,
// fs.ErrNotExist) and errors.Is(err, fs.ErrPermission) tell a missing
// module from a missing kvm group membership.
func Open(path string) (*System, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening KVM device: %w", err)
	}
	h, err := newFDHandle(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &System{h: h}, nil
}

// Close closes /dev/kvm. VMs created from it stay usable.
func (s *System) Close() error { return s.h.close() }

// Stat returns fstat of the open device: which device node this System is
// (a KVM module loaded again makes a new one).
func (s *System) Stat() (unix.Stat_t, error) { return s.h.stat() }

// Fd returns the file descriptor, for diagnostics only.
func (s *System) Fd() uintptr { return s.h.fd() }

// APIVersion returns KVM_GET_API_VERSION; anything but 12 (the APIVersion
// constant) means an interface this package does not speak.
func (s *System) APIVersion() (int, error) {
	v, err := s.h.ioctlArg(kvmGetAPIVersion, 0)
	return int(v), err
}

// CheckExtension returns KVM_CHECK_EXTENSION for c on the system fd: 0 if
// absent, otherwise 1 or a capability-specific value (such as a count).
func (s *System) CheckExtension(c Cap) (int, error) {
	v, err := s.h.ioctlArg(kvmCheckExtension, uintptr(c))
	return int(v), err
}

// RequireCaps checks each capability on the system fd and returns a
// *MissingCapsError naming every one that is absent.
func (s *System) RequireCaps(caps ...Cap) error {
	return requireCaps(s.CheckExtension, caps)
}

// VCPUMmapSize returns KVM_GET_VCPU_MMAP_SIZE: how many bytes of each vCPU
// fd to map (kvm_run plus the PIO and coalesced-MMIO pages).
func (s *System) VCPUMmapSize() (int, error) {
	v, err := s.h.ioctlArg(kvmGetVCPUMmapSize, 0)
	return int(v), err
}

// maxCPUIDEntries bounds the buffer growth on E2BIG; kernels cap their
// own tables at KVM_MAX_CPUID_ENTRIES (256 today).
const maxCPUIDEntries = 4096

// SupportedCPUID returns KVM_GET_SUPPORTED_CPUID: every CPUID leaf the
// host and KVM can offer a guest, the base for the guest's CPUID table.
func (s *System) SupportedCPUID() ([]CPUIDEntry2, error) {
	return getCPUIDGrowing(s.h, kvmGetSupportedCPUID)
}

// EmulatedCPUID returns KVM_GET_EMULATED_CPUID: CPUID features KVM
// emulates in software even where the host lacks them.
func (s *System) EmulatedCPUID() ([]CPUIDEntry2, error) {
	return getCPUIDGrowing(s.h, kvmGetEmulatedCPUID)
}

// getCPUIDGrowing issues a kvm_cpuid2-returning request, doubling the
// entry count while the kernel answers E2BIG.
func getCPUIDGrowing(h *fdHandle, req ioctlReq) ([]CPUIDEntry2, error) {
	for n := 256; n <= maxCPUIDEntries; n *= 2 {
		buf := newCPUID2Buffer(n)
		_, err := ioctlPtr(h, req, &buf[0])
		if errors.Is(err, unix.E2BIG) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return unpackCPUID2(buf)
	}
	return nil, fmt.Errorf("%s: kernel needs more than %d entries: %w", req.name, maxCPUIDEntries, unix.E2BIG)
}

// MSRIndexList returns KVM_GET_MSR_INDEX_LIST: the MSRs KVM saves and
// restores for a guest, i.e. what a snapshot must read with GetMSRs.
func (s *System) MSRIndexList() ([]uint32, error) {
	return getMSRList(s.h, kvmGetMSRIndexList)
}

// MSRFeatureIndexList returns KVM_GET_MSR_FEATURE_INDEX_LIST: the
// feature MSRs (such as IA32_ARCH_CAPABILITIES) readable on the system fd.
func (s *System) MSRFeatureIndexList() ([]uint32, error) {
	return getMSRList(s.h, kvmGetMSRFeatureIndex)
}

// getMSRList asks first with room for nothing: on E2BIG the kernel has
// written the count it needs into nmsrs, so the second call fits unless
// the list grew in between, which the loop absorbs.
func getMSRList(h *fdHandle, req ioctlReq) ([]uint32, error) {
	n := uint32(0)
	for range 4 {
		buf := make([]uint32, 1+int(n))
		buf[0] = n
		_, err := ioctlPtr(h, req, &buf[0])
		if errors.Is(err, unix.E2BIG) {
			if buf[0] <= n {
				return nil, fmt.Errorf("%s: E2BIG with %d entries but kernel asks for %d: %w", req.name, n, buf[0], err)
			}
			n = buf[0]
			continue
		}
		if err != nil {
			return nil, err
		}
		got := buf[0]
		if got > n {
			return nil, fmt.Errorf("%s: kernel reports %d entries in a %d-entry buffer", req.name, got, n)
		}
		return append([]uint32(nil), buf[1:1+got]...), nil
	}
	return nil, fmt.Errorf("%s: list size kept changing", req.name)
}

// CreateVM creates a VM of the default type (0) with KVM_CREATE_VM.
func (s *System) CreateVM() (*VM, error) {
	fd, err := s.h.ioctlArg(kvmCreateVM, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(fd, "kvm-vm")
	h, err := newFDHandle(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &VM{h: h, slots: make(map[uint32]uint64)}, nil
}
