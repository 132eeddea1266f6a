package vmm

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
	"github.com/ternvm/tern/test/tinyguest"
)

// preparedNow waits for the latest PrepareHostFor and returns what it
// made (still left for New to take).
func preparedNow(t *testing.T) *preparedHost {
	t.Helper()
	preparedMu.Lock()
	p := prepared
	preparedMu.Unlock()
	if p == nil {
		t.Fatal("nothing prepared")
	}
	<-p.done
	if p.err != nil {
		t.Fatalf("PrepareHostFor: %v", p.err)
	}
	return p
}

func quietLogger() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// New takes the guest RAM and interrupt controllers PrepareHostFor made
// when its RAM is the one prepared, and the guest runs on them.
func TestNewTakesThePreparedRAM(t *testing.T) {
	tinyguest.RequireKVM(t)
	elf, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	PrepareHostFor(DefaultKVMPath, 32<<20)
	p := preparedNow(t)
	if p.mem == nil {
		t.Fatal("PrepareHostFor made no RAM")
	}
	var cons syncBuffer
	v, err := New(Config{KernelPath: elf, PreferPVH: true, MemoryBytes: 32 << 20, Console: &cons, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	// The irqchip comes with them: a second KVM_CREATE_IRQCHIP on the
	// prepared VM would have failed New.
	if v.mem != p.mem || v.vm != p.vm {
		t.Fatalf("New did not take the prepared VM and RAM (VM %v, RAM %v)", v.vm == p.vm, v.mem == p.mem)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if reason, err := v.Run(ctx); err != nil || reason != StopPoweroff {
		t.Errorf("Run: %v, %v; want a poweroff", reason, err)
	}
	if !strings.Contains(cons.String(), tinyguest.HelloLine) {
		t.Errorf("console %q lacks %q", cons.String(), tinyguest.HelloLine)
	}
}

// RAM prepared for another guest is never used: a New of another size,
// with huge pages or a dirty-page log, and a restore, make their own VM
// and RAM, and the prepared ones are released.
func TestPreparedRAMOfAnotherShapeIsLeft(t *testing.T) {
	tinyguest.RequireKVM(t)
	cases := []struct {
		name  string
		cfg   Config
		fresh bool
	}{
		{"smaller", Config{MemoryBytes: 32 << 20}, true},
		{"dirty log", Config{MemoryBytes: 64 << 20, TrackDirtyPages: true}, true},
		{"huge pages", Config{MemoryBytes: 64 << 20, HugePages: true}, true},
		{"restore", Config{MemoryBytes: 64 << 20}, false},
	}
	for _, c := range cases {
		PrepareHostFor(DefaultKVMPath, 64<<20)
		p := preparedNow(t)
		c.cfg.KVMPath, c.cfg.Logger = DefaultKVMPath, quietLogger()
		v := newVM(c.cfg)
		cpuid, err := v.openHost(c.fresh)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cpuid()
		if v.mem != nil || v.vm != nil {
			t.Errorf("%s: took the prepared VM or RAM", c.name)
		}
		if v.sys != p.sys {
			t.Errorf("%s: did not take the prepared KVM device", c.name)
		}
		if _, err := p.vm.CheckExtension(0); err == nil {
			t.Errorf("%s: the prepared VM is still open", c.name)
		}
		v.sys.Close()
	}
}
