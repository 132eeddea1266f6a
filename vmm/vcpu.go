package vmm

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/boot"
	"github.com/ternvm/tern/kvm"
	"golang.org/x/sys/unix"
)

// kickSignal interrupts a vCPU thread blocked in KVM_RUN. The Go runtime
// already handles SIGURG (it uses it for preemption) and ignores one it did
// not ask for, so sending it to a thread is harmless; KVM_RUN returns EINTR.
const kickSignal = unix.SIGURG

// vcpu is one guest CPU and the goroutine, locked to its OS thread, that owns
// it: the thread creates the vCPU fd and is the only one to issue its
// ioctls.
type vcpu struct {
	vm   *VM
	id   int
	kvm  *kvm.VCPU // used only by the owning thread
	done sync.WaitGroup
	log  logrus.FieldLogger

	// mu guards what kick touches from other goroutines: the thread id and
	// the kvm_run mapping, which Close unmaps.
	mu       sync.Mutex
	tid      int
	kickable *kvm.VCPU

	requests chan vcpuRequest // work for this thread while it is parked
	order    chan vcpuOrder   // buffered: the one order a configured thread waits for
	running  atomic.Bool      // released to run guest code

	exits exitCounts // read by VM.Metrics from other goroutines

	cpuid  []kvm.CPUIDEntry2 // what the guest sees, set once configured
	tscKHz uint32            // the guest's TSC rate, set once configured (0: unknown)

	bootSregs kvm.Sregs // the boot vCPU's, read by prepare for configure
}

// vcpuOrder is what a configured vCPU's thread waits for: to run or to
// end. The boot vCPU's order to run carries Start's launch.
type vcpuOrder struct {
	run    bool
	launch *launch
}

// launch is how Start lets the guest run without a hand-over between
// threads on the way: each costs 0.05-0.1 ms on the development machine
// (a parked thread woken on another CPU), and Start used to have two, the
// vCPUs waking it once configured and it waking them after BeforeRun.
// Start hands the launch to the boot vCPU, whose thread waits until every
// vCPU is configured, runs Config.BeforeRun, marks the VM running, orders
// the other vCPUs to run and reports on done just before its first
// KVM_RUN; Start waits for that report and nothing waits for Start.
type launch struct {
	ready <-chan error // every vCPU's configure result; nil where createVCPUs took them
	n     int          // how many results ready brings
	steps *stepTimer   // Start's steps, for the debug log
	done  chan launched
}

// launched is the boot vCPU's report of a launch.
type launched struct {
	at  time.Time // just before the first KVM_RUN
	err error     // why the guest does not run
}

// spawnVCPUs starts every vCPU's thread, which creates its KVM vCPU at
// once (and prepares a fresh one) and then waits for configureVCPUs. New
// calls it as soon as the interrupt controllers exist, so that thread and
// vCPU creation overlap the rest of the build; Restore once the VM-wide
// state (interrupt controllers, clocks, devices) is loaded, as before. Only
// the first call does anything.
func (v *VM) spawnVCPUs() {
	v.vcpuMu.Lock()
	defer v.vcpuMu.Unlock()
	if v.vcpus != nil {
		return
	}
	// A VM that New builds gives its vCPUs their boot state, part of it
	// (CPUID, MSRs, FPU, LAPIC) before the kernel is loaded; a restored
	// or incoming one gives them the saved state, all at configure time.
	fresh := v.guestCPUIDs != nil
	ready := make(chan error, v.cfg.CPUs)
	// configure is buffered: a VM closed before its vCPUs were
	// configured tells them to end without waiting for them.
	configure := make(chan bool, v.cfg.CPUs)
	cs := make([]*vcpu, v.cfg.CPUs)
	for i := range cs {
		cs[i] = &vcpu{vm: v, id: i, log: v.log.WithField("vcpu", i), requests: make(chan vcpuRequest), order: make(chan vcpuOrder, 1)}
		cs[i].done.Add(1)
	}
	// A Stop from another goroutine may read the list at any time.
	v.vcpus = cs
	v.configure, v.ready = configure, ready
	for _, c := range cs {
		go c.thread(fresh, configure, ready)
	}
}

// configureVCPUs lets the spawned vCPUs take the VM's boot state (or
// restored state), which must be final, without waiting for them. Only
// the first call does anything.
func (v *VM) configureVCPUs() {
	v.vcpuMu.Lock()
	configure, n := v.configure, len(v.vcpus)
	v.configure = nil
	v.vcpuMu.Unlock()
	if configure == nil {
		return
	}
	for range n {
		configure <- true
	}
}

// createVCPUs creates and configures every vCPU (what spawnVCPUs and
// configureVCPUs did not start yet), each on its own thread, and waits
// until all are ready; none runs guest code until Start. A failure in one
// fails the whole set (and releases none of them to run).
func (v *VM) createVCPUs() error {
	ready, n := v.takeVCPUResults()
	if ready == nil {
		return errors.New("vCPUs already configured or ended")
	}
	if err := firstError(ready, n); err != nil {
		v.releaseVCPUs(vcpuOrder{})
		return err
	}
	return nil
}

// takeVCPUResults spawns and configures the vCPUs (what New or Restore
// did not start yet) and takes the channel their configure results come
// on, with how many come: nil where they were taken already.
func (v *VM) takeVCPUResults() (<-chan error, int) {
	v.spawnVCPUs()
	v.configureVCPUs()
	v.vcpuMu.Lock()
	defer v.vcpuMu.Unlock()
	ready := v.ready
	v.ready = nil
	return ready, len(v.vcpus)
}

// firstError reads n results from ready and returns the first error.
func firstError(ready <-chan error, n int) error {
	var first error
	for range n {
		if err := <-ready; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// releaseVCPUs gives the vCPUs' threads their order, configured or not: a
// launch goes to the boot vCPU, which orders the others; an order to end
// goes to all. Only the first call does anything; it reports whether the
// threads got o.
func (v *VM) releaseVCPUs(o vcpuOrder) bool {
	v.vcpuMu.Lock()
	configure, cs, released := v.configure, v.vcpus, v.released
	v.configure, v.released = nil, true
	v.vcpuMu.Unlock()
	if configure != nil {
		// Never configured: the threads end at their configure
		// step and never read their order.
		for range cs {
			configure <- false
		}
		return false
	}
	if released || len(cs) == 0 {
		return false
	}
	if o.launch != nil {
		cs[0].order <- o
		return true
	}
	for _, c := range cs {
		c.order <- o
	}
	return true
}

func (v *VM) joinVCPUs() {
	v.vcpuMu.Lock()
	cs := v.vcpus
	v.vcpuMu.Unlock()
	for _, c := range cs {
		c.done.Wait()
	}
}

// thread is the body of a vCPU's OS thread. The thread is never unlocked:
// when the goroutine returns, the runtime discards the thread, and with it
// any signal or KVM state tied to it.
func (c *vcpu) thread(fresh bool, configure <-chan bool, ready chan<- error) {
	defer c.done.Done()
	runtime.LockOSThread()
	c.mu.Lock()
	c.tid = unix.Gettid()
	c.mu.Unlock()
	defer c.release()
	err := c.create()
	if err == nil && fresh {
		err = c.prepare()
	}
	if !<-configure {
		return
	}
	if err == nil {
		err = c.configure(fresh)
	}
	ready <- err
	o := <-c.order
	if o.launch != nil {
		err = c.launch(o.launch, err)
		o.run = err == nil
	}
	if !o.run || err != nil {
		return
	}
	c.running.Store(true)
	if err := c.loop(); err != nil {
		c.vm.requestStop(0, err)
	}
}

func (c *vcpu) create() error {
	v := c.vm
	k, err := v.vm.CreateVCPU(c.id, v.mmap)
	if err != nil {
		return fmt.Errorf("create vCPU %d: %w", c.id, err)
	}
	c.kvm = k
	c.mu.Lock()
	c.kickable = k
	c.mu.Unlock()
	return nil
}

// prepare gives a fresh vCPU the state that does not depend on the guest
// loaded: CPUID (the template first, then tern's topology and the bits
// its devices need, as Firecracker normalises CPUID after its template),
// the MSRs firmware would leave, FPU and LAPIC lines. The boot vCPU also
// reads its segment registers for configure.
func (c *vcpu) prepare() error {
	if err := c.prepareState(); err != nil {
		return fmt.Errorf("configure vCPU %d: %w", c.id, err)
	}
	return nil
}

func (c *vcpu) prepareState() error {
	v := c.vm
	guest, err := v.guestCPUIDs()
	if err != nil {
		return err // New reports it too
	}
	c.cpuid = shapeCPUID(guest, c.id, v.cfg.CPUs)
	if err := c.kvm.SetCPUID2(c.cpuid); err != nil {
		return fmt.Errorf("set CPUID: %w", err)
	}
	if t := v.cfg.CPUTemplate; t != nil && c.id == 0 {
		if got, err := c.kvm.GetCPUID2(); err == nil {
			if drift := templateDrift(t, c.cpuid, got); len(drift) > 0 {
				c.log.WithField("cpu_template", t.String()).Warnf("this host's KVM does not show the guest the CPU template's %s: the guest sees the host's bits there", strings.Join(drift, "; "))
			}
		}
	}
	msrs := bootMSRs()
	n, err := c.kvm.SetMSRs(msrs)
	if err != nil {
		return fmt.Errorf("set MSRs: %w", err)
	}
	if n != len(msrs) {
		return fmt.Errorf("set MSRs: KVM accepted %d of %d, refusing %#x", n, len(msrs), msrs[n].Index)
	}
	if err := applyTemplateMSRs(v.cfg.CPUTemplate, c.kvm); err != nil {
		return err
	}
	if err := c.kvm.SetFPU(kvm.FPU{FCW: 0x37f, MXCSR: 0x1f80}); err != nil {
		return fmt.Errorf("set FPU: %w", err)
	}
	if err := c.setLAPICLines(); err != nil {
		return err
	}
	// A migration tells its destination, which must be able to keep it.
	if khz, err := c.kvm.GetTSCKHz(); err == nil {
		c.tscKHz = khz
	}
	if c.id == 0 {
		if c.bootSregs, err = c.kvm.GetSregs(); err != nil {
			return fmt.Errorf("get sregs: %w", err)
		}
	}
	return nil
}

// configure gives a prepared fresh vCPU, if it is the boot vCPU, the
// registers of the kernel's entry (the others wait in the in-kernel LAPIC
// for the guest's INIT/SIPI); or a restored or incoming vCPU its saved
// state.
func (c *vcpu) configure(fresh bool) error {
	if err := c.configureState(fresh); err != nil {
		return fmt.Errorf("configure vCPU %d: %w", c.id, err)
	}
	return nil
}

func (c *vcpu) configureState(fresh bool) error {
	v := c.vm
	if !fresh {
		r := v.restored
		if r == nil {
			return errors.New("no saved state to restore")
		}
		if err := c.restoreState(r.vcpus[c.id], r.advanceNS); err != nil {
			return err
		}
		c.cpuid = r.vcpus[c.id].CPUID
		// Tell the guest's kvmclock it was stopped, so its watchdogs
		// do not count the time saved as a lockup. A guest not using
		// kvmclock refuses, which changes nothing.
		_ = c.kvm.KVMClockCtrl()
		if khz, err := c.kvm.GetTSCKHz(); err == nil {
			c.tscKHz = khz
		}
		return nil
	}
	if c.id != 0 {
		return nil
	}
	sregs := c.bootSregs
	applySregs(&sregs, v.boot)
	if err := c.kvm.SetSregs(sregs); err != nil {
		return fmt.Errorf("set sregs: %w", err)
	}
	b := v.boot
	regs := kvm.Regs{RIP: b.RIP, RSP: b.RSP, RBP: b.RBP, RSI: b.RSI, RBX: b.RBX, RFLAGS: b.RFLAGS}
	if err := c.kvm.SetRegs(regs); err != nil {
		return fmt.Errorf("set regs: %w", err)
	}
	return nil
}

// setLAPICLines wires LINT0 to ExtINT and LINT1 to NMI, as firmware does
// and as the MP table and MADT describe.
func (c *vcpu) setLAPICLines() error {
	const (
		lvtLINT0       = 0x350
		lvtLINT1       = 0x360
		deliveryMask   = 0x700
		deliveryExtINT = 0x700
		deliveryNMI    = 0x400
	)
	l, err := c.kvm.GetLAPIC()
	if err != nil {
		return fmt.Errorf("get LAPIC: %w", err)
	}
	l.SetReg(lvtLINT0, l.Reg(lvtLINT0)&^deliveryMask|deliveryExtINT)
	l.SetReg(lvtLINT1, l.Reg(lvtLINT1)&^deliveryMask|deliveryNMI)
	if err := c.kvm.SetLAPIC(l); err != nil {
		return fmt.Errorf("set LAPIC: %w", err)
	}
	return nil
}

// bootMSRs are the MSR values firmware would leave behind.
func bootMSRs() []kvm.MSREntry {
	const (
		miscEnableFastString = 1
		mtrrDefTypeEnable    = 1 << 11
		mtrrTypeWriteBack    = 6
	)
	return []kvm.MSREntry{
		{Index: kvm.MSRIA32SysenterCS}, {Index: kvm.MSRIA32SysenterESP}, {Index: kvm.MSRIA32SysenterEIP},
		{Index: kvm.MSRStar}, {Index: kvm.MSRCStar}, {Index: kvm.MSRKernelGSBase},
		{Index: kvm.MSRSyscallMask}, {Index: kvm.MSRLStar},
		{Index: kvm.MSRIA32TSC},
		{Index: kvm.MSRIA32MiscEnable, Data: miscEnableFastString},
		{Index: kvm.MSRMTRRDefType, Data: mtrrDefTypeEnable | mtrrTypeWriteBack},
	}
}

func shapeCPUID(supported []kvm.CPUIDEntry2, id, count int) []kvm.CPUIDEntry2 {
	return fromBootCPUID(boot.ShapeCPUID(toBootCPUID(supported), id, count))
}

func applySregs(s *kvm.Sregs, b boot.CPUState) {
	seg := func(x boot.Segment) kvm.Segment {
		return kvm.Segment{Base: x.Base, Limit: x.Limit, Selector: x.Selector, Type: x.Type, Present: x.Present,
			DPL: x.DPL, DB: x.DB, S: x.S, L: x.L, G: x.G, AVL: x.AVL}
	}
	s.CS, s.DS, s.ES, s.FS, s.GS, s.SS = seg(b.CS), seg(b.DS), seg(b.ES), seg(b.FS), seg(b.GS), seg(b.SS)
	s.TR, s.LDT = seg(b.TR), seg(b.LDT)
	s.GDT = kvm.DTable{Base: b.GDT.Base, Limit: b.GDT.Limit}
	s.IDT = kvm.DTable{Base: b.IDT.Base, Limit: b.IDT.Limit}
	s.CR0, s.CR3, s.CR4, s.EFER = b.CR0, b.CR3, b.CR4, b.EFER
}

// kick makes the vCPU leave KVM_RUN soon: immediate_exit stops it from
// re-entering, the signal interrupts it if it is in the guest now.
func (c *vcpu) kick() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kickable != nil {
		c.kickable.SetImmediateExit(true)
	}
	if c.tid != 0 {
		// ESRCH would mean the thread is gone already, which is fine.
		_ = unix.Tgkill(unix.Getpid(), c.tid, kickSignal)
	}
}

// release closes the vCPU on its own thread, after which kick does nothing.
func (c *vcpu) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.kvm != nil {
		if err := c.kvm.Close(); err != nil {
			c.log.WithError(err).Warn("close vCPU")
		}
	}
	c.kickable, c.tid = nil, 0
}

// launch carries out Start's launch on the boot vCPU's thread (see
// launch); own is this vCPU's configure error. It returns nil where the
// guest may run.
func (c *vcpu) launch(l *launch, own error) (err error) {
	v := c.vm
	err = own
	if l.ready != nil {
		if e := firstError(l.ready, l.n); err == nil {
			err = e
		}
	}
	l.steps.mark("vcpus")
	if run := v.cfg.BeforeRun; run != nil && err == nil {
		if err = run(); err != nil {
			err = fmt.Errorf("before the guest runs: %w", err)
		}
		l.steps.mark("before-run")
	}
	if err == nil {
		// Before the vCPUs run: a guest that stops at once must find
		// the VM running, or its Stopped event would be lost.
		v.setState(StateRunning)
		v.emit(Event{Kind: EventStarted})
	}
	v.vcpuMu.Lock()
	others := v.vcpus[1:]
	v.vcpuMu.Unlock()
	for _, o := range others {
		o.order <- vcpuOrder{run: err == nil}
	}
	l.done <- launched{at: time.Now(), err: err}
	return err
}

// logFirstRun logs when the boot vCPU first entered the guest: since the
// process started (or the restore was asked for) and, at debug level, the
// steps Start took.
func (v *VM) logFirstRun(at time.Time, steps *stepTimer) {
	if v.restored != nil {
		v.log.WithFields(logrus.Fields{
			"since_request": at.Sub(v.cfg.Started).String(), "since_restore_call": at.Sub(v.restored.called).String(),
		}).Info("first KVM_RUN after restore (restore latency)")
		return
	}
	steps.mark("release")
	v.log.WithField("steps", steps.String()).Debug("VM started")
	v.log.WithField("since_start", at.Sub(v.cfg.Started).String()).Info("first KVM_RUN")
}

// loop runs the vCPU until the VM stops or the guest does something that
// ends it.
func (c *vcpu) loop() error {
	v := c.vm
	for {
		select {
		case <-v.stopped:
			return nil
		default:
		}
		exit, err := c.kvm.Run()
		if errors.Is(err, unix.EAGAIN) {
			// An AP waiting for INIT/SIPI was woken; KVM wants the
			// call repeated.
			continue
		}
		if err != nil {
			return err // already names the vCPU and KVM_RUN
		}
		switch e := exit.(type) {
		case kvm.ExitIO:
			c.exits.io(e.In)
			v.plat.handleIO(e)
		case kvm.ExitMMIO:
			c.exits.mmio(e.Write)
			v.plat.handleMMIO(e)
		case kvm.ExitInterrupted:
			// A kick or a stray signal. Only here, after a KVM_RUN
			// that returned with nothing half done (it completes a
			// pending I/O instruction before honouring
			// immediate_exit), is the vCPU's state whole enough to
			// park and be saved.
			if v.pausing.Load() {
				c.park()
			} else {
				c.throttled()
			}
		case kvm.ExitHLT:
			// The in-kernel LAPIC handles HLT; a HLT exit means the
			// vCPU can never be woken.
			c.log.Warn("vCPU halted with no way to wake it")
			return nil
		case kvm.ExitShutdown:
			c.log.WithFields(c.faultState()).Warn("vCPU shut down (triple fault)")
			v.requestStop(StopTripleFault, nil)
			return nil
		case kvm.ExitSystemEvent:
			switch e.Type {
			case kvm.SystemEventShutdown:
				v.requestStop(StopPoweroff, nil)
			case kvm.SystemEventReset:
				v.requestStop(StopReset, nil)
			default:
				return fmt.Errorf("vCPU %d: guest system event %d (crash)", c.id, e.Type)
			}
			return nil
		case kvm.ExitFailEntry:
			return fmt.Errorf("vCPU %d: KVM entry failed: hardware reason %#x on host CPU %d", c.id, e.HardwareEntryFailureReason, e.CPU)
		case kvm.ExitInternalError:
			return fmt.Errorf("vCPU %d: %v", c.id, e)
		default:
			return fmt.Errorf("vCPU %d: unexpected exit %v", c.id, exit.Reason())
		}
	}
}

// faultState is what a triple fault's log line says of the vCPU's state,
// read on its thread: where it was (rip, rsp, the code segment), its mode
// (cr0, cr3, cr4, efer), where the IDT was, and the exception KVM last had
// for it. A register it cannot read is left out. KVM on AMD resets the
// vCPU before it reports the shutdown (the VMCB is undefined after one),
// so there the line can only say that the state is lost.
func (c *vcpu) faultState() logrus.Fields {
	f := logrus.Fields{}
	hex := func(v uint64) string { return fmt.Sprintf("%#x", v) }
	r, rerr := c.kvm.GetRegs()
	if rerr == nil {
		f["rip"], f["rsp"], f["rflags"] = hex(r.RIP), hex(r.RSP), hex(r.RFLAGS)
	}
	if s, err := c.kvm.GetSregs(); err == nil {
		f["cs"] = fmt.Sprintf("%#x/%#x", s.CS.Selector, s.CS.Base)
		f["cr0"], f["cr2"], f["cr3"], f["cr4"], f["efer"] = hex(s.CR0), hex(s.CR2), hex(s.CR3), hex(s.CR4), hex(s.EFER)
		f["idt"] = fmt.Sprintf("%#x/%#x", s.IDT.Base, s.IDT.Limit)
		if rerr == nil && r.RIP == 0xfff0 && s.CS.Base == 0xffff0000 {
			f["state"] = "reset by KVM at the shutdown (as on AMD hosts): the faulting state is lost"
		}
	}
	if e, err := c.kvm.GetVCPUEvents(); err == nil && (e.ExceptionInjected != 0 || e.ExceptionPending != 0) {
		f["exception"] = fmt.Sprintf("%d/%#x", e.ExceptionNr, e.ExceptionErrorCode)
	}
	return f
}
