package vmm

import (
	"errors"
	"testing"

	"github.com/ternvm/tern/mmds"
	"github.com/ternvm/tern/test/tinyguest"
	virtionet "github.com/ternvm/tern/virtio/net"
)

func TestValidateMMDS(t *testing.T) {
	kernel, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	nets := []virtionet.Config{{TAP: "tap0"}, {TAP: "tap1", ID: "eth1"}}
	for _, ifs := range [][]string{{"tap0"}, {"net1"}, {"eth1"}, {"net0", "eth1"}} {
		cfg := Config{KernelPath: kernel, Nets: nets, MMDS: &MMDS{Config: mmds.Config{Interfaces: ifs}}}
		if err := cfg.Validate(); err != nil {
			t.Errorf("MMDS on %v: %v", ifs, err)
		}
	}
	for name, m := range map[string]*MMDS{
		"unknown interface": {Config: mmds.Config{Interfaces: []string{"eth9"}}},
		"no interface":      {},
		"version 3":         {Config: mmds.Config{Version: 3, Interfaces: []string{"tap0"}}},
	} {
		err := Config{KernelPath: kernel, Nets: nets, MMDS: m}.Validate()
		if !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", name, err)
		}
	}
	dup := []virtionet.Config{{TAP: "tap0", ID: "x"}, {TAP: "tap1", ID: "x"}}
	if err := (Config{KernelPath: kernel, Nets: dup}).Validate(); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("two nets with one id: %v", err)
	}
}
