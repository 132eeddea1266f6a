package virtio_test

import (
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// TestNoInterruptFlag: without VIRTIO_F_EVENT_IDX the device interrupts
// unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT.
func TestNoInterruptFlag(t *testing.T) {
	mem, drv, q := setup(t, 8, 0)
	if n, err := q.NeedsNotification(mem); !n || err != nil {
		t.Errorf("flags 0: NeedsNotification = %v, %v; want true", n, err)
	}
	drv.SetAvailFlags(virtqtest.AvailFNoInterrupt)
	if n, err := q.NeedsNotification(mem); n || err != nil {
		t.Errorf("NO_INTERRUPT: NeedsNotification = %v, %v; want false", n, err)
	}
}

// TestEventIdxNotification checks the used_event rule (virtio 1.2
// 2.7.10): interrupt when the used index moving from old to new passed
// used_event, that is when (u16)(new - used_event - 1) < (u16)(new - old).
// Expected answers are worked out by hand in each case's comment.
func TestEventIdxNotification(t *testing.T) {
	cases := []struct {
		name      string
		old, new  uint16 // used index at the previous check and now
		usedEvent uint16
		want      bool
	}{
		// new-e-1 = 0 < new-old = 1: the index just passed 5.
		{"crossed exactly", 5, 6, 5, true},
		// 7-5-1 = 1, 7-6 = 1: 1 < 1 false; 5 was already passed.
		{"passed earlier", 6, 7, 5, false},
		// 10-5-1 = 4 < 10-3 = 7.
		{"crossed in a batch", 3, 10, 5, true},
		// 5-10-1 = 65530 < 2 false: the driver waits for 10.
		{"event ahead", 3, 5, 10, false},
		// 9-9-1 = 65535 < 1 false: event 9 means "after the 10th".
		{"event equals new", 8, 9, 9, false},
		// Across the wrap: 1-65535-1 = 1 < 1-65534 = 3.
		{"crossed across wrap", 65534, 1, 65535, true},
		// 1-65533-1 = 3 < 3 false: 65533 was passed before 65534.
		{"passed before wrap", 65534, 1, 65533, false},
		// Batch of 0: new == old never notifies (x < 0 is false).
		{"nothing new", 4, 4, 3, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem, drv, q := setup(t, 8, virtqtest.FeatureEventIdx)
			st := q.State()
			st.NextUsed, st.SignalledUsed, st.SignalledUsedValid = c.new, c.old, true
			if err := q.SetState(st); err != nil {
				t.Fatal(err)
			}
			drv.SetUsedEvent(c.usedEvent)
			if got, err := q.NeedsNotification(mem); got != c.want || err != nil {
				t.Errorf("old %d new %d used_event %d: NeedsNotification = %v, %v; want %v",
					c.old, c.new, c.usedEvent, got, err, c.want)
			}
		})
	}
}

// TestEventIdxSequence drives the rule through AddUsed: the first check
// always interrupts, and after that only passing used_event does.
func TestEventIdxSequence(t *testing.T) {
	mem, drv, q := setup(t, 8, virtqtest.FeatureEventIdx)
	drv.SetAvailFlags(virtqtest.AvailFNoInterrupt) // ignored with EVENT_IDX
	complete := func(n int) {
		for range n {
			drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x8000, Len: 1, Write: true}))
			c, err := q.Pop(mem)
			if err != nil {
				t.Fatal(err)
			}
			q.AddUsed(mem, c.Head, 1)
		}
	}
	complete(1) // used idx 1
	if n, _ := q.NeedsNotification(mem); !n {
		t.Errorf("first check: no interrupt")
	}
	drv.SetUsedEvent(2) // interrupt when used idx passes 2, i.e. reaches 3
	complete(1)         // 1 -> 2
	if n, _ := q.NeedsNotification(mem); n {
		t.Errorf("used idx 1->2 with used_event 2: interrupt")
	}
	complete(1) // 2 -> 3
	if n, _ := q.NeedsNotification(mem); !n {
		t.Errorf("used idx 2->3 with used_event 2: no interrupt")
	}
	complete(2) // 3 -> 5, used_event 2 left behind
	if n, _ := q.NeedsNotification(mem); n {
		t.Errorf("used idx 3->5 with stale used_event 2: interrupt")
	}
}

// TestNotificationSuppression checks what the device writes to ask for (or
// not) notifications of new buffers, and the recheck after enabling.
func TestNotificationSuppression(t *testing.T) {
	t.Run("flags", func(t *testing.T) {
		mem, drv, q := setup(t, 8, 0)
		if err := q.DisableNotification(mem); err != nil || drv.UsedFlags() != virtqtest.UsedFNoNotify {
			t.Errorf("DisableNotification: %v, used flags %d; want 1", err, drv.UsedFlags())
		}
		if more, err := q.EnableNotification(mem); more || err != nil || drv.UsedFlags() != 0 {
			t.Errorf("EnableNotification = %v, %v, used flags %d; want false, nil, 0", more, err, drv.UsedFlags())
		}
		drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x8000, Len: 1}))
		if more, _ := q.EnableNotification(mem); !more {
			t.Errorf("EnableNotification with a buffer pending = false, want true")
		}
	})
	t.Run("event idx", func(t *testing.T) {
		mem, drv, q := setup(t, 8, virtqtest.FeatureEventIdx)
		for range 3 {
			drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x8000, Len: 1}))
		}
		if err := q.DisableNotification(mem); err != nil || drv.UsedFlags() != 0 {
			t.Errorf("DisableNotification with EVENT_IDX: %v, used flags %d; want 0", err, drv.UsedFlags())
		}
		if more, _ := q.EnableNotification(mem); !more || drv.AvailEvent() != 0 {
			t.Errorf("EnableNotification before popping: more %v, avail_event %d; want true, 0", more, drv.AvailEvent())
		}
		for range 3 {
			q.Pop(mem)
		}
		if more, _ := q.EnableNotification(mem); more || drv.AvailEvent() != 3 {
			t.Errorf("EnableNotification after popping 3: more %v, avail_event %d; want false, 3", more, drv.AvailEvent())
		}
	})
}
