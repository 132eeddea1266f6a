package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/devices"
	"github.com/ternvm/tern/kvm"
	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/virtio/balloon"
	"golang.org/x/sys/unix"
)

// platform is the set of emulated devices and the buses vCPU exits are
// dispatched on.
type platform struct {
	vm      *VM
	log     logrus.FieldLogger
	pio     *devices.Bus
	mmio    *devices.Bus
	serial  *devices.Serial
	console *consoleBuffer // between the UART and Config.Console
	rtc     *devices.RTC
	i8042   *devices.I8042
	irqs    []*irqLine
	virtio  []*virtioSlot
	balloon *balloon.Device
	mmds    *mmds.Service // nil without Config.MMDS
	limits  rateLimited   // the devices whose rate limits can change
	// vcpuLogs are the lines a vCPU's thread handed to another goroutine
	// to write.
	vcpuLogs sync.WaitGroup

	// unhandled remembers the latest unhandled addresses, to log each
	// once while remembered; its size is fixed whatever the guest
	// touches. unhandledLog and bootLog bound the lines a guest can
	// make tern log.
	unhandled    *seenTable[unhandledKey]
	unhandledLog *logLimiter
	bootLog      *logLimiter
}

// unhandledKey is a struct, not a formatted string: a guest polling an
// empty port must not cost an allocation per access.
type unhandledKey struct {
	space string
	addr  uint64
}

func newPlatform(v *VM) (_ *platform, err error) {
	p := &platform{vm: v, log: v.log, pio: devices.NewBus("pio"), mmio: devices.NewBus("mmio")}
	p.initGuestLogLimits()
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	com1, err := p.newIRQLine(boot.IRQCOM1)
	if err != nil {
		return nil, err
	}
	p.console = newConsoleBuffer(v.cfg.Console, consoleBufferSize)
	p.serial = devices.NewSerial(p.console, com1)
	p.rtc = devices.NewRTC(time.Now)
	kbdIRQ, err := p.newIRQLine(boot.IRQKeyboard)
	if err != nil {
		return nil, err
	}
	reset := func() { v.requestStop(StopReset, nil) }
	p.i8042 = devices.NewI8042(reset, kbdIRQ)
	poweroff := func() { v.requestStop(StopPoweroff, nil) }
	for _, r := range []struct {
		base, size uint64
		dev        devices.Device
	}{
		{boot.PortCOM1, 8, p.serial},
		{boot.PortI8042Data, 5, p.i8042},
		{boot.PortRTC, 2, p.rtc},
		{boot.PortACPISleepCtl, 3, devices.NewACPIPM(poweroff, reset)},
		{boot.PortBootTimer, 1, devices.NewBootTimer(v.cfg.Started, p.bootDone)},
	} {
		if err := p.pio.Register(r.base, r.size, r.dev); err != nil {
			return nil, fmt.Errorf("register device at port %#x: %w", r.base, err)
		}
	}
	if err := p.addConfiguredVirtio(); err != nil {
		return nil, err
	}
	return p, nil
}

// start begins feeding host input to the serial console.
func (p *platform) start() {
	p.startVirtio()
	in := p.vm.cfg.ConsoleInput
	if in == nil {
		return
	}
	go p.pumpInput(in)
}

// pumpInput copies host input into the UART's bounded FIFO, waiting while
// the guest has not drained it. It ends at EOF or when the VM stops; a read
// that blocks past the stop keeps the goroutine until the reader returns.
func (p *platform) pumpInput(in io.Reader) {
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for data := buf[:n]; len(data) > 0; {
			select {
			case <-p.vm.stopped:
				return
			default:
			}
			m, qerr := p.serial.EnqueueInput(data)
			data = data[m:]
			if qerr != nil || m == 0 {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.log.WithError(err).Warn("console input")
			}
			return
		}
	}
}

// handleIO dispatches a port I/O exit. String I/O (rep ins/outs) arrives as
// Count items of Size bytes each.
func (p *platform) handleIO(e kvm.ExitIO) {
	size := int(e.Size)
	if size == 0 {
		return
	}
	for i := 0; i+size <= len(e.Data); i += size {
		item := e.Data[i : i+size]
		var ok bool
		if e.In {
			ok = p.pio.Read(uint64(e.Port), item)
			if !ok {
				for j := range item {
					item[j] = 0xff
				}
			}
		} else {
			ok = p.pio.Write(uint64(e.Port), item)
		}
		if !ok {
			p.noteUnhandled("port", uint64(e.Port), e.In)
		}
	}
}

// handleMMIO dispatches an MMIO exit; unbacked reads return zeros.
func (p *platform) handleMMIO(e kvm.ExitMMIO) {
	var ok bool
	if e.Write {
		ok = p.mmio.Write(e.Addr, e.Data)
	} else {
		ok = p.mmio.Read(e.Addr, e.Data)
		if !ok {
			clear(e.Data)
		}
	}
	if !ok {
		p.noteUnhandled("mmio", e.Addr, !e.Write)
	}
}

func (p *platform) initGuestLogLimits() {
	p.unhandled = newSeenTable[unhandledKey](unhandledTableSize)
	p.unhandledLog = newLogLimiter(guestLogLines, guestLogPeriod)
	p.bootLog = newLogLimiter(guestLogLines, guestLogPeriod)
}

func (p *platform) noteUnhandled(space string, addr uint64, read bool) {
	if !p.unhandled.add(unhandledKey{space, addr}) {
		return
	}
	ok, dropped := p.unhandledLog.allow(time.Now())
	if !ok {
		return
	}
	f := logrus.Fields{"space": space, "addr": fmt.Sprintf("%#x", addr), "read": read}
	if dropped > 0 {
		f["dropped"] = dropped
	}
	p.log.WithFields(f).Debug("guest access to nothing (logged once)")
}

// bootDone is the boot timer's callback. A guest can write the port in a
// loop, so its lines are rate-limited like noteUnhandled's.
func (p *platform) bootDone(d time.Duration) {
	if p.vm != nil && !p.vm.bootSeen.Swap(true) {
		p.vm.emit(Event{Kind: EventBootDone, BootTime: d})
	}
	ok, dropped := p.bootLog.allow(time.Now())
	if !ok {
		return
	}
	l := p.log.WithField("boot-time", d.String())
	if dropped > 0 {
		l = l.WithField("dropped", dropped)
	}
	// Written on another goroutine: this runs on the vCPU's thread,
	// which must not wait on a log's output (a full pipe, a slow
	// terminal) while the guest waits on it. The limiter bounds the
	// goroutines as it bounds the lines; close waits for them.
	p.vcpuLogs.Add(1)
	go func() {
		defer p.vcpuLogs.Done()
		l.Info("guest signalled boot done (boot-time)")
	}()
}

func (p *platform) close() error {
	waitTimeout(&p.vcpuLogs, consoleFlushTimeout)
	if p.console != nil {
		p.console.Close(consoleFlushTimeout)
		if n := p.console.Dropped(); n > 0 {
			l := p.log.WithField("bytes", n)
			if err := p.console.Err(); err != nil {
				l = l.WithError(err)
			}
			l.Warn("console output dropped: the console did not keep up")
		}
	}
	errs := []error{p.closeVirtio()}
	for _, l := range p.irqs {
		errs = append(errs, l.close(p.vm.vm))
	}
	p.irqs = nil
	return errors.Join(errs...)
}

// irqLine is an interrupt line driven through an irqfd: a write to the
// eventfd makes KVM pulse the GSI without a trip through the vCPU threads.
type irqLine struct {
	fd  int
	gsi uint32
}

func (p *platform) newIRQLine(gsi uint32) (*irqLine, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("eventfd for GSI %d: %w", gsi, err)
	}
	if err := p.vm.vm.RegisterIRQFD(fd, gsi); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("irqfd for GSI %d: %w", gsi, err)
	}
	l := &irqLine{fd: fd, gsi: gsi}
	p.irqs = append(p.irqs, l)
	return l, nil
}

// Trigger raises an edge on the line.
func (l *irqLine) Trigger() error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	if _, err := unix.Write(l.fd, one[:]); err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("trigger GSI %d: %w", l.gsi, err)
	}
	return nil
}

func (l *irqLine) close(vm *kvm.VM) error {
	err := vm.UnregisterIRQFD(l.fd, l.gsi)
	if cerr := unix.Close(l.fd); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

// waitTimeout waits for wg, or for d to pass.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
	}
}
