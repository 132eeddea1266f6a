package balloon

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestStateRoundTripResumesHeldStatsBuffer(t *testing.T) {
	cfg := Config{TargetMiB: 1, DeflateOnOOM: true, StatsPollInterval: time.Hour}
	r := newRig(t, cfg)
	r.activate()
	r.post(QueueStats, statEntries([2]uint64{specMemfree, 4096}, [2]uint64{specCaches, 8192}))
	r.post(QueueInflate, pfnArray(1, 2))
	r.waitUsed(QueueInflate, 1)
	eventually(t, func() bool { return r.dev.Counters().StatsUpdates == 1 }, "a statistics update")
	r.dev.WriteConfig(specOffActual, []byte{2, 0, 0, 0})
	if err := r.dev.SetTarget(2); err != nil {
		t.Fatal(err)
	}

	st := r.dev.State()
	want := State{
		DeflateOnOOM:      true,
		StatsPollInterval: time.Hour,
		NumPages:          512,
		Actual:            2,
		Stats:             map[uint16]uint64{specMemfree: 4096, specCaches: 8192},
		StatsBufferHeld:   true,
		StatsBufferHead:   0,
		Counters:          Counters{InflatedPages: 2, StatsUpdates: 1},
	}
	if !reflect.DeepEqual(st, want) {
		t.Fatalf("State = %+v, want %+v", st, want)
	}

	// Restore into a fresh device on the same queues (the transport
	// restores their state) with a short interval: the held buffer
	// must go back to the driver.
	r.reset()
	st.StatsPollInterval = 10 * time.Millisecond
	dev, err := New(cfg, r.rec.release)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SetState(st); err != nil {
		t.Fatalf("SetState: %v", err)
	}
	if got := dev.State(); !reflect.DeepEqual(got, st) {
		t.Errorf("State after SetState = %+v, want %+v", got, st)
	}
	if got := dev.Stats(); got["free-memory"] != 4096 || got["disk-caches"] != 8192 || len(got) != 2 {
		t.Errorf("Stats after SetState = %v", got)
	}
	dev.idleHook = r.workerIdle
	r.dev = dev
	r.activate()
	r.waitUsed(QueueStats, 1)
	if id, _ := r.usedElem(QueueStats, 0); id != 0 {
		t.Errorf("returned stats head %d, want the held 0", id)
	}
	if err := r.dev.SetState(st); !errors.Is(err, ErrActive) {
		t.Errorf("SetState while active: %v, want ErrActive", err)
	}
}

func TestSetStateRejectsBadState(t *testing.T) {
	good := State{StatsPollInterval: time.Second, NumPages: 10}
	cases := map[string]func(*State){
		"negative interval":      func(s *State) { s.StatsPollInterval = -1 },
		"features differ":        func(s *State) { s.DeflateOnOOM = true },
		"no statistics queue":    func(s *State) { s.StatsPollInterval = 0 },
		"unknown statistics tag": func(s *State) { s.Stats = map[uint16]uint64{0x7fff: 1} },
		"held head past queue":   func(s *State) { s.StatsBufferHeld, s.StatsBufferHead = true, 256 },
	}
	for name, spoil := range cases {
		d, err := New(Config{StatsPollInterval: time.Second}, func(uint64, uint64) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		st := good
		spoil(&st)
		if err := d.SetState(st); err == nil {
			t.Errorf("%s: SetState(%+v) succeeded", name, st)
		}
		if d.Target() != 0 {
			t.Errorf("%s: a refused SetState changed the target", name)
		}
	}
}
