package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/boot/acpi"
	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/mmio"
	"golang.org/x/sys/unix"
)

// virtioSlot is one virtio-mmio device as the VM wires it: its register
// window on the MMIO bus, its interrupt line, and one ioeventfd per queue so
// that a driver's notify reaches the device without a vCPU exit to tern.
type virtioSlot struct {
	name      string
	addr      uint64
	gsi       uint32
	transport *mmio.Transport
	notifiers []*queueNotifier
	closer    func() error // the device's own resources, if any
}

// queueNotifier is the ioeventfd of one queue and the goroutine that turns
// its events into Transport.Notify calls. The eventfd is read through an
// *os.File so that the Go runtime's poller waits on it (one epoll for all).
type queueNotifier struct {
	fd    int // the same fd as file; file.Fd() would make it blocking
	file  *os.File
	index uint32
	done  chan struct{}
}

// nextVirtioGSI hands out interrupt lines for virtio devices: from
// boot.FirstVirtioIRQ to the last I/O APIC pin, skipping lines the platform
// already uses.
func (p *platform) nextVirtioGSI() (uint32, error) {
	taken := map[uint32]bool{boot.IRQCOM1: true, 8: true} // COM1, CMOS RTC
	for _, s := range p.virtio {
		taken[s.gsi] = true
	}
	for gsi := uint32(boot.FirstVirtioIRQ); gsi < acpi.IOAPICPins; gsi++ {
		if !taken[gsi] {
			return gsi, nil
		}
	}
	return 0, fmt.Errorf("no free interrupt line for another virtio device (at most %d)", acpi.IOAPICPins-boot.FirstVirtioIRQ-1)
}

// addVirtio puts dev on the MMIO bus in the next free window.
func (p *platform) addVirtio(name string, dev virtio.Device, closer func() error) error {
	addr := uint64(boot.VirtioMMIOBase) + uint64(len(p.virtio))*boot.VirtioMMIOSize
	gsi, err := p.nextVirtioGSI()
	if err != nil {
		return err
	}
	line, err := p.newIRQLine(gsi)
	if err != nil {
		return err
	}
	tr, err := mmio.New(dev, p.vm.mem, line)
	if err != nil {
		return fmt.Errorf("virtio %s: %w", name, err)
	}
	// Transport.Err was read by no one: the guest's driver sees only a
	// status bit, so the cause goes to the log and to OnEvent.
	tr.OnNeedsReset(func(err error) {
		p.log.WithField("device", name).WithError(err).Warn("virtio device needs reset")
		p.vm.emit(Event{Kind: EventDeviceNeedsReset, Device: name, Err: err})
	})
	s := &virtioSlot{name: name, addr: addr, gsi: gsi, transport: tr, closer: closer}
	p.virtio = append(p.virtio, s)
	if err := p.mmio.Register(addr, boot.VirtioMMIOSize, tr); err != nil {
		return fmt.Errorf("virtio %s: %w", name, err)
	}
	for i := 0; i < tr.NumQueues(); i++ {
		n, err := p.newQueueNotifier(addr+tr.NotifyOffset(), uint32(i))
		if err != nil {
			return fmt.Errorf("virtio %s queue %d: %w", name, i, err)
		}
		s.notifiers = append(s.notifiers, n)
	}
	p.log.WithFields(map[string]any{"device": name, "mmio": fmt.Sprintf("%#x", addr), "gsi": gsi}).Debug("virtio device attached")
	return nil
}

func (p *platform) newQueueNotifier(addr uint64, index uint32) (*queueNotifier, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	match := uint64(index)
	if err := p.vm.vm.RegisterIOEventFD(fd, addr, 4, &match, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return &queueNotifier{fd: fd, file: os.NewFile(uintptr(fd), fmt.Sprintf("ioeventfd-%#x-%d", addr, index)), index: index, done: make(chan struct{})}, nil
}

// startVirtio begins forwarding queue notifications.
func (p *platform) startVirtio() {
	for _, s := range p.virtio {
		for _, n := range s.notifiers {
			go n.run(s.transport)
		}
	}
}

func (n *queueNotifier) run(tr *mmio.Transport) {
	defer close(n.done)
	var buf [8]byte
	for {
		if _, err := n.file.Read(buf[:]); err != nil {
			return // closed at teardown
		}
		if binary.NativeEndian.Uint64(buf[:]) > 0 {
			tr.Notify(n.index)
		}
	}
}

// acpiVirtioDevices lists the devices for the DSDT, where a stock kernel
// finds them.
func (p *platform) acpiVirtioDevices() []acpi.VirtioDevice {
	var out []acpi.VirtioDevice
	for _, s := range p.virtio {
		out = append(out, acpi.VirtioDevice{Addr: s.addr, Size: boot.VirtioMMIOSize, IRQ: s.gsi})
	}
	return out
}

// closeVirtio resets every device (stopping its workers), then releases the
// notifiers and the devices' own resources.
func (p *platform) closeVirtio() error {
	var errs []error
	for _, s := range p.virtio {
		var zero [4]byte
		s.transport.Write(mmio.RegStatus, zero[:])
		for _, n := range s.notifiers {
			errs = append(errs, p.vm.vm.UnregisterIOEventFD(n.fd, s.addr+s.transport.NotifyOffset(), 4, ptr(uint64(n.index)), false))
			errs = append(errs, n.file.Close())
		}
		if s.closer != nil {
			errs = append(errs, s.closer())
		}
	}
	p.virtio = nil
	return errors.Join(errs...)
}

func ptr[T any](v T) *T { return &v }

// virtioCmdline describes the devices as virtio_mmio.device= parameters, for
// kernels built with VIRTIO_MMIO_CMDLINE_DEVICES that boot without ACPI.
// With ACPI on, the DSDT already names them and a second description would
// register each device twice.
func virtioCmdline(devs []acpi.VirtioDevice) string {
	var parts []string
	for _, d := range devs {
		parts = append(parts, fmt.Sprintf("virtio_mmio.device=%dK@%#x:%d", d.Size>>10, d.Addr, d.IRQ))
	}
	return strings.Join(parts, " ")
}

// acpiDisabled reports whether the command line turns ACPI off.
func acpiDisabled(cmdline string) bool {
	for _, f := range strings.Fields(cmdline) {
		if f == "acpi=off" {
			return true
		}
	}
	return false
}
