package snapshot

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

type cpuState struct {
	ID   int
	RIP  uint64
	Regs []uint64
}

func TestStateJSONSurvivesTheFile(t *testing.T) {
	var s State // the zero value is usable
	if err := s.PutJSON("config", map[string]int{"CPUs": 2}); err != nil {
		t.Fatal(err)
	}
	for i, rip := range []uint64{0xffffffff81000000, 1<<64 - 1} {
		name := "vcpu/" + string(rune('0'+i))
		if err := s.PutJSON(name, cpuState{ID: i, RIP: rip, Regs: []uint64{1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
	s.PutJSON("device/disk0", struct{ Path string }{"/img"})
	s.PutJSON("config", map[string]int{"CPUs": 4}) // replaces, keeps its place

	var b bytes.Buffer
	if err := WriteState(&b, s.Sections()); err != nil {
		t.Fatal(err)
	}
	sections, err := ReadState(&b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewState(sections)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Names(""); !reflect.DeepEqual(got, []string{"config", "vcpu/0", "vcpu/1", "device/disk0"}) {
		t.Errorf("Names(\"\") = %v", got)
	}
	if got := r.Names("vcpu/"); !reflect.DeepEqual(got, []string{"vcpu/0", "vcpu/1"}) {
		t.Errorf("Names(\"vcpu/\") = %v", got)
	}
	var cfg map[string]int
	if err := r.GetJSON("config", &cfg); err != nil || cfg["CPUs"] != 4 {
		t.Errorf("config = %v, %v", cfg, err)
	}
	var c cpuState
	if err := r.GetJSON("vcpu/1", &c); err != nil || c.ID != 1 || c.RIP != 1<<64-1 || len(c.Regs) != 2 {
		t.Errorf("vcpu/1 = %+v, %v (a uint64 must survive JSON exactly)", c, err)
	}
}

func TestStateGetJSONRefusesWhatItCannotHold(t *testing.T) {
	s, err := NewState([]Section{
		{"vcpu/0", []byte(`{"ID":0,"RIP":5,"Regs":null,"Future":1}`)},
		{"vcpu/1", []byte(`{"ID":1} {"ID":2}`)},
		{"vcpu/2", []byte(`{"ID":1}}`)},
		{"vcpu/3", []byte(`{"ID":"one"}`)},
		{"vcpu/4", []byte(`{"ID":4}` + "\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	var c cpuState
	for _, name := range []string{"vcpu/0", "vcpu/1", "vcpu/2", "vcpu/3"} {
		if err := s.GetJSON(name, &c); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v, want ErrMalformed naming the section", name, err)
		}
	}
	if err := s.GetJSON("vcpu/4", &c); err != nil || c.ID != 4 {
		t.Errorf("vcpu/4 (trailing newline): %+v, %v", c, err)
	}
	err = s.GetJSON("memory", &c)
	if !errors.Is(err, ErrNoSection) || err.Error() != `vmstate: no section "memory"` {
		t.Errorf("missing section: %v", err)
	}
	if s.Has("memory") || !s.Has("vcpu/0") {
		t.Error("Has disagrees with the sections")
	}
}

func TestStateRefusesBadNames(t *testing.T) {
	if _, err := NewState([]Section{{"a", nil}, {"a", nil}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate: %v", err)
	}
	if _, err := NewState([]Section{{"with space", nil}}); !errors.Is(err, ErrMalformed) {
		t.Errorf("bad name: %v", err)
	}
	var s State
	if err := s.PutJSON("", 1); !errors.Is(err, ErrMalformed) {
		t.Errorf("PutJSON with an empty name: %v", err)
	}
	if err := s.PutJSON("x", func() {}); err == nil {
		t.Error("PutJSON of a func succeeded")
	}
	if len(s.Sections()) != 0 {
		t.Errorf("failed puts left %d sections", len(s.Sections()))
	}
}
