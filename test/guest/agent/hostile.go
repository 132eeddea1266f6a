package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ternvm/tern/boot"
)

// The unbacked guest-physical range the hostile guest reads and writes:
// the MMIO hole below the first virtio-mmio window, where tern has no
// device, so every access is an exit that tern answers with nothing.
const (
	hostileMMIOBase = boot.MMIOHoleStart
	hostileMMIOSize = boot.VirtioMMIOBase - boot.MMIOHoleStart
)

// hostileSkip lists the ports the sweep leaves alone, [first, last], and
// why: each would end the VM (which is not what is under test) or take the
// guest's own console or interrupts away from it.
var hostileSkip = [][2]uint16{
	{0x20, 0x21},   // PIC: KVM's own, never reaches tern; reprogramming it stops the guest's interrupts
	{0x40, 0x43},   // PIT: the same
	{0x60, 0x64},   // i8042: a 0xfe command resets the VM
	{0xa0, 0xa1},   // second PIC
	{0x3f8, 0x3ff}, // COM1: the guest's console, which the test reads
	{0x440, 0x440}, // the boot timer: spammed by its own loop
	{0x4d0, 0x4d1}, // ELCR: KVM's own
	{0x600, 0x602}, // ACPI sleep control and reset
	{0xcf8, 0xcff}, // PCI configuration; 0xcf9 resets a PC
}

func hostileSkipped(port uint16, size int) bool {
	last := uint32(port) + uint32(size) - 1
	for _, r := range hostileSkip {
		if uint32(port) <= uint32(r[1]) && last >= uint32(r[0]) {
			return true
		}
	}
	return false
}

// hostile is a guest attacking its monitor for SECONDS: it sweeps the
// whole I/O port space with byte and long reads and writes, reads and
// writes a word in every page of the MMIO hole (through /dev/mem), floods
// the serial console with text and terminal escape sequences, and writes
// the boot-timer port in a tight loop, all at once. It prints key=value
// lines: what it could set up, "started=yes", "tick=N" every second, and
// at the end how much of each it did.
func hostileCmd(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("usage: hostile SECONDS [ATTACKS]")
	}
	secs, err := strconv.Atoi(args[0])
	if err != nil || secs <= 0 {
		return fmt.Errorf("bad SECONDS %q", args[0])
	}
	// ATTACKS (ports,mmio,console,boottimer; all by default) picks some,
	// to tell which one a monitor fails under.
	on := map[string]bool{"ports": true, "mmio": true, "console": true, "boottimer": true}
	if len(args) == 2 && args[1] != "" && args[1] != "all" {
		on = map[string]bool{}
		for _, a := range strings.Split(args[1], ",") {
			on[a] = true
		}
	}
	var (
		stop                          atomic.Bool
		ports, mmio, cons, bootWrites atomic.Uint64
		wg                            sync.WaitGroup
		ready                         = make(chan string, 4)
	)
	// Port permissions (iopl, ioperm) belong to the thread that asked for
	// them, so each port loop keeps its goroutine on that thread.
	started := 0
	attack := func(name string, f func()) {
		if !on[name] {
			return
		}
		started++
		wg.Add(1)
		go func() {
			defer wg.Done()
			f()
		}()
	}
	attack("ports", func() {
		runtime.LockOSThread()
		if err := unix.Iopl(3); err != nil {
			ready <- "iopl=refused:" + err.Error()
			return
		}
		ready <- "iopl=ok"
		for pass := uint32(0); !stop.Load(); pass++ {
			for p := 0; p <= 0xffff && !stop.Load(); p++ {
				port := uint16(p)
				if !hostileSkipped(port, 1) {
					outb(port, uint8(uint32(p)^pass))
					inb(port)
					ports.Add(2)
				}
				if p%4 == 0 && !hostileSkipped(port, 4) {
					outl(port, pass*0x01010101)
					inl(port)
					ports.Add(2)
				}
			}
		}
	})
	attack("boottimer", func() {
		runtime.LockOSThread()
		if err := unix.Ioperm(boot.PortBootTimer, 1, 1); err != nil {
			ready <- "boottimer=refused:" + err.Error()
			return
		}
		ready <- "boottimer=ok"
		for !stop.Load() {
			outb(boot.PortBootTimer, boot.BootTimerMagic)
			bootWrites.Add(1)
		}
	})
	attack("mmio", func() {
		// A distribution kernel's STRICT_DEVMEM still lets /dev/mem map
		// what is not RAM and not claimed by a driver, as the hole is.
		f, err := os.OpenFile("/dev/mem", os.O_RDWR|os.O_SYNC, 0)
		if err != nil {
			ready <- "devmem=refused:" + err.Error()
			return
		}
		defer f.Close()
		mem, err := unix.Mmap(int(f.Fd()), hostileMMIOBase, hostileMMIOSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
		if err != nil {
			ready <- "devmem=refused:" + err.Error()
			return
		}
		defer unix.Munmap(mem)
		ready <- "devmem=ok"
		// A word in every page, at another offset each pass: each
		// access is a new guest-physical address.
		for pass := 0; !stop.Load(); pass++ {
			off := (pass * 4) % 4096
			for page := 0; page < len(mem) && !stop.Load(); page += 4096 {
				w := (*uint32)(unsafe.Pointer(&mem[page+off]))
				v := atomic.LoadUint32(w)
				atomic.StoreUint32(w, v^uint32(page))
				mmio.Add(2)
			}
		}
	})
	attack("console", func() {
		// A blocking descriptor, not an os.File: Go makes a terminal
		// non-blocking, and a non-blocking write that finds the tty's
		// buffer full is cut in two, letting another writer's line in
		// between. A blocking write holds the tty until it is done.
		tty, err := unix.Open("/dev/ttyS0", unix.O_WRONLY|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err != nil {
			ready <- "flood=refused:" + err.Error()
			return
		}
		defer unix.Close(tty)
		ready <- "flood=ok"
		// What a terminal showing the console would obey: a clipboard
		// write (OSC 52), window and icon titles, queries that make it
		// answer into its input (DA, DSR, window title report), a C1 CSI
		// written as UTF-8, a screen clear and a colour; each write is one
		// whole line, so the agent's own lines are never split by it.
		seqs := "\x1b]52;c;aG9zdGlsZSBjbGlwYm9hcmQ=\x07" +
			"\x1b]0;hostile title\x07\x1b]2;hostile title\x1b\\" +
			"\x1b[c\x1b[6n\x1b[21t\x1b[>0q\xc2\x9b6n\x1b[2J\x1b[31m\x1bc"
		for n := 0; !stop.Load(); n++ {
			line := fmt.Sprintf("hostile flood %d %s end\r\n", n, seqs)
			for b := []byte(line); len(b) > 0; {
				n, err := unix.Write(tty, b)
				if err != nil && err != unix.EINTR {
					return
				}
				b = b[max(n, 0):]
			}
			cons.Add(uint64(len(line)))
		}
	})
	for range started {
		fmt.Println(<-ready)
	}
	fmt.Println("started=yes")
	for i := 1; i <= secs; i++ {
		time.Sleep(time.Second)
		fmt.Printf("tick=%d\n", i)
	}
	stop.Store(true)
	wg.Wait()
	fmt.Printf("port-accesses=%d\nmmio-accesses=%d\nconsole-bytes=%d\nboottimer-writes=%d\ndone=yes\n",
		ports.Load(), mmio.Load(), cons.Load(), bootWrites.Load())
	return nil
}
