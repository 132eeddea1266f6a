package vmm_test

import (
	"testing"

	"github.com/ternvm/tern/test/tinyguest"
	"github.com/ternvm/tern/vmm"
)

// TestMetricsCountTheHelloGuestsExits: the hello guest's only exits are
// its port writes (see test/tinyguest/guests/hello.S): the boot-timer
// magic, each byte of its line on COM1, and the ACPI sleep register. The
// exit counters must say exactly that.
func TestMetricsCountTheHelloGuestsExits(t *testing.T) {
	v, cons, hook := newGuest(t, guestRAM, tinyguest.BuildHello)
	if m := v.Metrics(); m.Exits != (vmm.ExitCounts{}) {
		t.Errorf("before the guest ran: %+v", m.Exits)
	}
	r := start(t, v, cons, hook)
	if res := r.wait(t); res.reason != vmm.StopPoweroff {
		t.Fatalf("the guest ended with %v, %v", res.reason, res.err)
	}
	want := vmm.ExitCounts{IOOut: uint64(1 + len(tinyguest.HelloLine+"\n") + 1)}
	if got := v.Metrics().Exits; got != want {
		t.Errorf("exits = %+v, want %+v", got, want)
	}
}
