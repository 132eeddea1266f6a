package main

import (
	"bytes"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/ternvm/tern/test/tinyguest"
)

func TestBootsTheHelloGuest(t *testing.T) {
	tinyguest.RequireKVM(t)
	hello, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run([]string{"gofloor", hello, "16"}, &out); err != nil {
		t.Fatalf("run: %v (console so far %q)", err, out.String())
	}
	if !strings.Contains(out.String(), tinyguest.HelloLine) {
		t.Errorf("console = %q, want the line %q", out.String(), tinyguest.HelloLine)
	}
}

func TestLoadPlacesSegmentsAndFindsTheEntry(t *testing.T) {
	hello, err := tinyguest.BuildHello(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	image, err := os.ReadFile(hello)
	if err != nil {
		t.Fatal(err)
	}
	mem := make([]byte, 4<<20)
	entry, err := load(image, mem)
	if err != nil {
		t.Fatal(err)
	}
	if entry < tinyguest.LoadAddr || entry >= tinyguest.LoadAddr+8<<10 {
		t.Errorf("entry %#x is not in the guest's image at %#x", entry, tinyguest.LoadAddr)
	}
	if !bytes.Contains(mem[tinyguest.LoadAddr:tinyguest.LoadAddr+8<<10], []byte(tinyguest.HelloLine)) {
		t.Errorf("the hello line is not in guest memory at %#x", tinyguest.LoadAddr)
	}

	// Too little RAM: the segment does not fit. Without the note: no entry.
	if _, err := load(image, make([]byte, tinyguest.LoadAddr)); err == nil || !strings.Contains(err.Error(), "does not fit") {
		t.Errorf("load into too little RAM: %v, want a segment that does not fit", err)
	}
	noNote := bytes.Clone(image)
	le := binary.LittleEndian
	phoff, phentsize, phnum := le.Uint64(noNote[0x20:]), uint64(le.Uint16(noNote[0x36:])), uint64(le.Uint16(noNote[0x38:]))
	for i := range phnum {
		if ph := noNote[phoff+i*phentsize:]; le.Uint32(ph) == elfNote {
			le.PutUint32(ph, 0) // PT_NULL
		}
	}
	if _, err := load(noNote, mem); err == nil || !strings.Contains(err.Error(), "no PVH entry") {
		t.Errorf("load without the note: %v, want no PVH entry", err)
	}
	if _, err := load(image[:40], mem); err == nil {
		t.Error("load of a truncated file succeeded")
	}
}
