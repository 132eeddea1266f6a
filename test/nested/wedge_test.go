package nested

import (
	"bytes"
	"testing"
)

func TestWedgeWatchFiresOnceOnASplitMarker(t *testing.T) {
	var out bytes.Buffer
	fired := 0
	w := &wedgeWatch{w: &out, wedged: func() { fired++ }}
	console := "[  340.593619] watchdog: BUG: soft lockup - CPU#1 stuck for 313s! [tern:104]\n"
	// Byte by byte: the marker never arrives in one write.
	for i := range len(console) {
		w.Write([]byte{console[i]})
	}
	w.Write([]byte(console))
	if fired != 1 {
		t.Errorf("wedged called %d times, want 1", fired)
	}
	if out.String() != console+console {
		t.Errorf("output not passed through unchanged: %q", out.String())
	}
}

func TestWedgeWatchIgnoresAHealthyConsole(t *testing.T) {
	var out bytes.Buffer
	w := &wedgeWatch{w: &out, wedged: func() { t.Error("wedged called on a healthy console") }}
	w.Write([]byte("TEST-HOST running scenario virtio.sh\nwatchdog: enabled\nBUG: none\n"))
}
