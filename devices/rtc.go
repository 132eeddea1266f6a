package devices

import (
	"fmt"
	"sync"
	"time"
)

// CMOS RTC (MC146818) port offsets, register indexes and bits.
const (
	rtcIndexPort = 0 // port 0x70
	rtcDataPort  = 1 // port 0x71
	rtcNMIMask   = 0x80

	rtcSeconds  = 0x00
	rtcMinutes  = 0x02
	rtcHours    = 0x04
	rtcWeekday  = 0x06
	rtcDay      = 0x07
	rtcMonth    = 0x08
	rtcYear     = 0x09
	rtcStatusA  = 0x0a
	rtcStatusB  = 0x0b
	rtcStatusC  = 0x0c
	rtcStatusD  = 0x0d
	rtcCentury  = 0x32
	rtcCMOSSize = 128

	rtcAUIP       = 0x80 // status A: update in progress
	rtcADefault   = 0x26 // 32.768 kHz time base, 1024 Hz periodic rate
	rtcBBinary    = 0x04 // status B DM: binary, not BCD
	rtc24Hour     = 0x02 // status B: 24-hour clock
	rtcBDefault   = rtc24Hour
	rtcDValidRAM  = 0x80 // status D VRT: the battery is good
	rtcHourPM     = 0x80 // in 12-hour mode
	rtcCMOSMaxIdx = rtcCMOSSize - 1
)

// RTCState is the CMOS contents and the selected index. The time bytes
// of CMOS are not used: the time always comes from the clock.
type RTCState struct {
	Index uint8
	CMOS  [rtcCMOSSize]byte
}

// RTC is the CMOS real-time clock with its 128 bytes of CMOS RAM.
//
// The time registers read the injected clock in UTC, in the format status
// register B selects (BCD or binary, 24- or 12-hour with PM in bit 7).
// Guest writes to the time registers are accepted and ignored: the guest
// cannot move the host's clock, and hwclock --systohc is harmless. Status
// A never shows an update in progress; C reads 0 (no interrupt flags, no
// interrupt line is wired); D reports valid RAM. The alarm bytes and every
// other index are plain storage.
type RTC struct {
	now func() time.Time

	mu    sync.Mutex
	index uint8
	cmos  [rtcCMOSSize]byte
}

// NewRTC returns an RTC reading the time from now (time.Now in a VMM; a
// fixed clock in tests).
func NewRTC(now func() time.Time) *RTC {
	r := &RTC{now: now}
	r.cmos[rtcStatusA] = rtcADefault
	r.cmos[rtcStatusB] = rtcBDefault
	r.cmos[rtcStatusD] = rtcDValidRAM
	return r
}

// Read handles the index port (offset 0, reads back the selected index)
// and the data port (offset 1); a two-byte access covers both.
func (r *RTC) Read(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range data {
		switch offset + uint64(i) {
		case rtcIndexPort:
			data[i] = r.index
		case rtcDataPort:
			data[i] = r.readCMOS(r.index)
		default:
			data[i] = 0
		}
	}
}

// Write handles the index port, whose bit 7 (the NMI mask) is dropped, and
// the data port.
func (r *RTC) Write(offset uint64, data []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, v := range data {
		switch offset + uint64(i) {
		case rtcIndexPort:
			r.index = v &^ rtcNMIMask
		case rtcDataPort:
			r.writeCMOS(r.index, v)
		}
	}
}

func (r *RTC) readCMOS(idx uint8) uint8 {
	switch idx {
	case rtcSeconds, rtcMinutes, rtcHours, rtcWeekday, rtcDay, rtcMonth, rtcYear, rtcCentury:
		return r.timeRegister(idx, r.now().UTC())
	case rtcStatusA:
		return r.cmos[rtcStatusA] &^ rtcAUIP
	case rtcStatusC:
		return 0
	case rtcStatusD:
		return rtcDValidRAM
	}
	return r.cmos[idx&rtcCMOSMaxIdx]
}

func (r *RTC) writeCMOS(idx, v uint8) {
	switch idx {
	case rtcSeconds, rtcMinutes, rtcHours, rtcWeekday, rtcDay, rtcMonth, rtcYear, rtcCentury,
		rtcStatusC, rtcStatusD:
		// Time registers follow the host clock; C and D are read-only.
	case rtcStatusA:
		r.cmos[rtcStatusA] = v &^ rtcAUIP
	default:
		r.cmos[idx&rtcCMOSMaxIdx] = v
	}
}

// timeRegister encodes one field of t in the format status B selects.
func (r *RTC) timeRegister(idx uint8, t time.Time) uint8 {
	b := r.cmos[rtcStatusB]
	encode := func(v int) uint8 {
		if b&rtcBBinary != 0 {
			return uint8(v)
		}
		return uint8(v/10<<4 | v%10)
	}
	switch idx {
	case rtcSeconds:
		return encode(t.Second())
	case rtcMinutes:
		return encode(t.Minute())
	case rtcHours:
		h := t.Hour()
		if b&rtc24Hour != 0 {
			return encode(h)
		}
		pm := h >= 12
		if h %= 12; h == 0 {
			h = 12
		}
		if pm {
			return encode(h) | rtcHourPM
		}
		return encode(h)
	case rtcWeekday:
		return encode(int(t.Weekday()) + 1) // 1 is Sunday
	case rtcDay:
		return encode(t.Day())
	case rtcMonth:
		return encode(int(t.Month()))
	case rtcYear:
		return encode(t.Year() % 100)
	case rtcCentury:
		return encode(t.Year() / 100 % 100)
	}
	return 0
}

// State returns the selected index and a copy of CMOS.
func (r *RTC) State() RTCState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return RTCState{Index: r.index, CMOS: r.cmos}
}

// SetState restores a state from State.
func (r *RTC) SetState(st RTCState) error {
	if st.Index > rtcCMOSMaxIdx {
		return fmt.Errorf("rtc state: index %#02x is beyond the %d CMOS bytes", st.Index, rtcCMOSSize)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.index = st.Index
	r.cmos = st.CMOS
	return nil
}
