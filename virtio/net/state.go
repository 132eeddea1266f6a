package virtionet

import (
	"fmt"
	"net"
	"sync/atomic"

	"github.com/ternvm/tern/virtio"
)

// Counters count the device's traffic. Bytes are frame bytes, without the
// vnet header.
type Counters struct {
	TxFrames  uint64 // frames written to the TAP
	TxBytes   uint64
	TxDropped uint64 // transmit requests not sent: malformed, too big or refused by the TAP
	RxFrames  uint64 // frames placed in receive buffers
	RxBytes   uint64
	RxDropped uint64 // frames read from the TAP that no receive buffer could take
	// RxBadBuffers counts receive chains returned unused because they
	// could not hold even a vnet header.
	RxBadBuffers uint64
	// TxIntercepted counts frames the guest sent to a service inside
	// tern (MMDS), which never reached the TAP; the service's answers
	// count in RxFrames.
	TxIntercepted uint64 `json:",omitempty"`
}

type counters struct {
	txFrames, txBytes, txDropped            atomic.Uint64
	rxFrames, rxBytes, rxDropped, rxBadBufs atomic.Uint64
	txIntercepted                           atomic.Uint64
}

func (c *counters) snapshot() Counters {
	return Counters{
		TxFrames: c.txFrames.Load(), TxBytes: c.txBytes.Load(), TxDropped: c.txDropped.Load(),
		RxFrames: c.rxFrames.Load(), RxBytes: c.rxBytes.Load(), RxDropped: c.rxDropped.Load(),
		RxBadBuffers: c.rxBadBufs.Load(), TxIntercepted: c.txIntercepted.Load(),
	}
}

func (c *counters) restore(s Counters) {
	c.txFrames.Store(s.TxFrames)
	c.txBytes.Store(s.TxBytes)
	c.txDropped.Store(s.TxDropped)
	c.rxFrames.Store(s.RxFrames)
	c.rxBytes.Store(s.RxBytes)
	c.rxDropped.Store(s.RxDropped)
	c.rxBadBufs.Store(s.RxBadBuffers)
	c.txIntercepted.Store(s.TxIntercepted)
}

// State is the device's part of a snapshot; the queues are saved by the
// transport.
type State struct {
	TAP           string
	MAC           net.HardwareAddr
	AckedFeatures uint64
	Counters      Counters
}

// State returns the device's state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{
		TAP:           d.tapName,
		MAC:           append(net.HardwareAddr(nil), d.mac...),
		AckedFeatures: d.acked,
		Counters:      d.counters.snapshot(),
	}
}

// SetState restores a saved state into an inactive device opened on the
// same TAP. The transport then activates it with the saved features.
func (d *Device) SetState(st State) error {
	if st.TAP != d.tapName {
		return fmt.Errorf("virtio-net: saved state is for TAP %q, this device uses %q", st.TAP, d.tapName)
	}
	if err := validateMAC(st.MAC); err != nil {
		return fmt.Errorf("virtio-net: saved state: %w", err)
	}
	if extra := st.AckedFeatures &^ (OfferedFeatures | virtio.TransportFeatures); extra != 0 {
		return fmt.Errorf("virtio-net: saved state acknowledges features %#x the device does not offer", extra)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active {
		return fmt.Errorf("virtio-net: cannot restore state into an active device")
	}
	d.mac = append(net.HardwareAddr(nil), st.MAC...)
	d.acked = st.AckedFeatures
	d.counters.restore(st.Counters)
	return nil
}
