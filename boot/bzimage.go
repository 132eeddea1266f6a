package boot

import (
	"fmt"
	"io"
)

const (
	// minBzImageProtocol is 2.12, the first protocol with xloadflags and
	// so the first that can say it has a 64-bit entry point.
	minBzImageProtocol = 0x020c
	// entry64Offset is where the 64-bit entry sits in the loaded
	// protected-mode kernel.
	entry64Offset = 0x200
	sectorSize    = 512
	// defaultSetupSects is what setup_sects == 0 means.
	defaultSetupSects = 4
)

// loadBzImage validates a bzImage's setup header and copies its
// protected-mode kernel to HighMemStart.
func loadBzImage(mem GuestMemory, image io.ReaderAt, imageSize int64, probe []byte, memEnd uint64) (*Kernel, error) {
	h, err := ParseSetupHeader(probe)
	if err != nil {
		return nil, err
	}
	if err := checkBzImageHeader(h); err != nil {
		return nil, err
	}

	setupSects := int64(h.SetupSects)
	if setupSects == 0 {
		setupSects = defaultSetupSects
	}
	kernelOff := (setupSects + 1) * sectorSize
	if kernelOff >= imageSize {
		return nil, fmt.Errorf("bzImage is truncated: %d bytes, but its setup code alone takes %d", imageSize, kernelOff)
	}
	kernelSize := imageSize - kernelOff
	// syssize counts the protected-mode code in 16-byte paragraphs; the
	// file may carry more after it (a signature), never less.
	if need := int64(h.Syssize) * 16; need > kernelSize {
		return nil, fmt.Errorf("bzImage is truncated: syssize says %d bytes of protected-mode code, the file holds %d", need, kernelSize)
	}

	const load = HighMemStart
	// boot.rst: a relocatable kernel runs at the load address raised to
	// pref_address and aligned up to kernel_alignment, and needs init_size
	// bytes there before it looks at the memory map.
	runtimeStart, ok := alignUp(max(load, h.PrefAddress), uint64(h.KernelAlignment))
	if !ok || runtimeStart+uint64(h.InitSize) < runtimeStart {
		return nil, fmt.Errorf("bzImage pref_address %#x with kernel_alignment %#x overflows", h.PrefAddress, h.KernelAlignment)
	}
	end := max(load+uint64(kernelSize), runtimeStart+uint64(h.InitSize))
	if end > memEnd {
		return nil, fmt.Errorf("bzImage needs guest memory up to %#x (%d bytes of image at %#x, init_size %#x at %#x), but RAM ends at %#x",
			end, kernelSize, load, h.InitSize, runtimeStart, memEnd)
	}
	if err := copyToGuest(mem, load, image, kernelOff, kernelSize); err != nil {
		return nil, fmt.Errorf("load bzImage: %w", err)
	}
	return &Kernel{
		Format:        FormatBzImage,
		Protocol:      ProtocolLinux64,
		Entry:         load + entry64Offset,
		Setup:         h,
		End:           end,
		InitrdAddrMax: uint64(h.InitrdAddrMax),
	}, nil
}

// checkBzImageHeader rejects headers this loader cannot boot through the
// 64-bit entry.
func checkBzImageHeader(h *SetupHeader) error {
	if h.Version < minBzImageProtocol {
		return fmt.Errorf("bzImage protocol %s is older than %s", protocolString(h.Version), protocolString(minBzImageProtocol))
	}
	if h.Loadflags&LoadedHigh == 0 {
		return fmt.Errorf("bzImage lacks LOADED_HIGH (a zImage cannot be loaded at %#x)", HighMemStart)
	}
	if h.RelocatableKernel == 0 {
		return fmt.Errorf("bzImage is not relocatable")
	}
	if h.Xloadflags&XLFKernel64 == 0 {
		return fmt.Errorf("bzImage lacks XLF_KERNEL_64 (no 64-bit entry point)")
	}
	if a := h.KernelAlignment; a == 0 || a&(a-1) != 0 {
		return fmt.Errorf("bzImage kernel_alignment %#x is not a power of two", a)
	}
	if h.InitSize == 0 {
		return fmt.Errorf("bzImage init_size is 0")
	}
	return nil
}
