package block

import "testing"

// TestCountersCountWhatTheGuestDid drives a mix of requests through the
// real queue and checks each counter against the requests made.
func TestCountersCountWhatTheGuestDid(t *testing.T) {
	path, _ := image(t, 16)
	h := newHarness(t, Config{Path: path}, allFeatures)
	if got := h.dev.Counters(); got != (Counters{}) {
		t.Fatalf("a fresh disk counts %+v", got)
	}
	h.wantStatus("write", h.do(specTOut, 0, pattern(3*specSector, 1), 0), specSOK)
	h.wantStatus("write", h.do(specTOut, 5, pattern(specSector, 2), 0), specSOK)
	h.wantStatus("read", h.do(specTIn, 0, nil, 2*specSector), specSOK)
	h.wantStatus("flush", h.do(specTFlush, 0, nil, 0), specSOK)
	// Failures count as failed and nowhere else.
	h.wantStatus("read past the end", h.do(specTIn, 16, nil, specSector), specSIOErr)
	h.wantStatus("write past the end", h.do(specTOut, 15, pattern(2*specSector, 3), 0), specSIOErr)
	h.wantStatus("flush with data", h.do(specTFlush, 0, pattern(specSector, 1), 0), specSIOErr)
	want := Counters{
		WriteCount: 2, WriteBytes: 4 * specSector,
		ReadCount: 1, ReadBytes: 2 * specSector,
		FlushCount: 1, Failed: 3,
	}
	if got := h.dev.Counters(); got != want {
		t.Errorf("counters = %+v, want %+v", got, want)
	}
}
