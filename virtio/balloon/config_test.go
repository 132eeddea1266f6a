package balloon

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio"
)

func TestIdentityFeaturesAndQueues(t *testing.T) {
	cases := []struct {
		name     string
		cfg      Config
		features uint64
		queues   int
	}{
		{"plain", Config{}, 0, 2},
		{"deflate on OOM", Config{DeflateOnOOM: true}, specFDeflateOnOOM, 2},
		{"statistics", Config{StatsPollInterval: time.Second}, specFStatsVQ, 3},
		{"both", Config{DeflateOnOOM: true, StatsPollInterval: time.Second}, specFStatsVQ | specFDeflateOnOOM, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := New(c.cfg, func(uint64, uint64) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			if d.DeviceID() != specDeviceID {
				t.Errorf("DeviceID = %d, want %d", d.DeviceID(), specDeviceID)
			}
			if d.Features() != c.features {
				t.Errorf("Features = %#x, want %#x", d.Features(), c.features)
			}
			if d.Features()&virtio.ReservedFeatures != 0 {
				t.Errorf("Features %#x use reserved bits", d.Features())
			}
			sizes := d.QueueMaxSizes()
			if len(sizes) != c.queues {
				t.Fatalf("%d queues, want %d", len(sizes), c.queues)
			}
			for i, s := range sizes {
				if s != 256 {
					t.Errorf("queue %d max size %d, want 256", i, s)
				}
			}
		})
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	ok := func(uint64, uint64) error { return nil }
	if _, err := New(Config{}, nil); err == nil {
		t.Error("New with a nil release function succeeded")
	}
	if _, err := New(Config{StatsPollInterval: -time.Second}, ok); err == nil {
		t.Error("New with a negative interval succeeded")
	}
	// num_pages is a le32 count of 4 KiB pages: 16 TiB - 4 KiB at most.
	if _, err := New(Config{TargetMiB: 16 << 20}, ok); err == nil {
		t.Error("New with a 16 TiB target succeeded")
	}
	if _, err := New(Config{TargetMiB: 16<<20 - 1}, ok); err != nil {
		t.Errorf("New with a target just under 16 TiB: %v", err)
	}
}

func readConfigU32(d *Device, off uint64) uint32 {
	b := make([]byte, 4)
	d.ReadConfig(off, b)
	return binary.LittleEndian.Uint32(b)
}

func TestConfigLayout(t *testing.T) {
	d, err := New(Config{TargetMiB: 3}, func(uint64, uint64) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	// 3 MiB is 768 pages of 4 KiB.
	if got := readConfigU32(d, specOffNumPages); got != 768 {
		t.Errorf("num_pages = %d, want 768", got)
	}
	if got := readConfigU32(d, specOffActual); got != 0 {
		t.Errorf("actual = %d, want 0", got)
	}

	// The driver writes actual; Actual reports it, and the whole space
	// reads back as the two le32 fields.
	d.WriteConfig(specOffActual, []byte{0x34, 0x12, 0, 0})
	if d.Actual() != 0x1234 {
		t.Errorf("Actual = %#x after the driver wrote 0x1234", d.Actual())
	}
	all := make([]byte, 8)
	d.ReadConfig(0, all)
	want := []byte{0x00, 0x03, 0, 0, 0x34, 0x12, 0, 0}
	if string(all) != string(want) {
		t.Errorf("config space = % x, want % x", all, want)
	}

	// A byte write changes that byte only.
	d.WriteConfig(specOffActual+1, []byte{0x56})
	if d.Actual() != 0x5634 {
		t.Errorf("Actual = %#x after a byte write of 0x56 at offset 5, want 0x5634", d.Actual())
	}

	// num_pages is the device's: driver writes are ignored.
	d.WriteConfig(specOffNumPages, []byte{0xff, 0xff, 0xff, 0xff})
	if got := readConfigU32(d, specOffNumPages); got != 768 {
		t.Errorf("num_pages = %d after a driver write, want 768", got)
	}

	// Past the end: reads leave zeros, writes are ignored.
	tail := []byte{0, 0, 0, 0}
	d.ReadConfig(8, tail)
	d.ReadConfig(1<<63, tail)
	if string(tail) != "\x00\x00\x00\x00" {
		t.Errorf("read past the end = % x", tail)
	}
	d.WriteConfig(8, []byte{1, 2, 3, 4})
	d.WriteConfig(^uint64(0), []byte{1, 2, 3, 4})
	if d.Actual() != 0x5634 {
		t.Errorf("Actual = %#x after writes past the end", d.Actual())
	}
	// A read straddling the end gets the bytes that exist, zeros after.
	part := make([]byte, 4) // the transport hands ReadConfig zeroed data
	d.ReadConfig(5, part)
	if want := []byte{0x56, 0, 0, 0}; string(part) != string(want) {
		t.Errorf("read of 4 bytes at 5 = % x, want % x", part, want)
	}
}

func TestSetTargetSignalsConfigChange(t *testing.T) {
	r := newRig(t, Config{TargetMiB: 1})

	// Before activation there is no driver to tell.
	if err := r.dev.SetTarget(2); err != nil {
		t.Fatalf("SetTarget before activation: %v", err)
	}
	if got := readConfigU32(r.dev, specOffNumPages); got != 512 {
		t.Errorf("num_pages = %d, want 512 (2 MiB)", got)
	}
	if r.irq.count(specIntConfigChange) != 0 {
		t.Error("config change signalled before activation")
	}

	r.activate()
	if err := r.dev.SetTarget(100); err != nil {
		t.Fatalf("SetTarget: %v", err)
	}
	if got := readConfigU32(r.dev, specOffNumPages); got != 25600 {
		t.Errorf("num_pages = %d, want 25600 (100 MiB)", got)
	}
	if r.dev.Target() != 25600 {
		t.Errorf("Target = %d, want 25600", r.dev.Target())
	}
	if n := r.irq.count(specIntConfigChange); n != 1 {
		t.Errorf("%d config change interrupts, want 1", n)
	}
	if err := r.dev.SetTarget(16 << 20); err == nil {
		t.Error("SetTarget(16 TiB) succeeded")
	}
	if r.dev.Target() != 25600 {
		t.Errorf("Target = %d after a refused SetTarget, want 25600", r.dev.Target())
	}
}

func TestActivateRejectsWrongQueueCount(t *testing.T) {
	r := newRig(t, Config{StatsPollInterval: time.Second})
	if err := r.dev.Activate(r.mem, r.queues[:2], r.irq, 0); err == nil {
		t.Error("Activate with 2 queues for a device offering 3 succeeded")
	}
	r.activate()
	if err := r.dev.Activate(r.mem, r.queues, r.irq, 0); !errors.Is(err, ErrActive) {
		t.Errorf("second Activate: %v, want ErrActive", err)
	}
}
