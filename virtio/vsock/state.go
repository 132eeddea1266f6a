package vsock

import "fmt"

// State is the device's snapshot state: its configuration only. Open
// connections are not part of a snapshot (their host ends are sockets of
// this process); the restored guest is told to drop its own with a
// transport reset event.
type State struct {
	GuestCID   uint64
	SocketPath string
}

// State returns the device's state.
func (d *Device) State() State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return State{GuestCID: d.cid, SocketPath: d.path}
}

// SetState restores the guest CID from st while the device is inactive,
// and arranges for VIRTIO_VSOCK_EVENT_TRANSPORT_RESET to be posted on the
// next activation. The device keeps listening on the path it was created
// with: st.SocketPath records the configuration a VMM recreates the device
// from and may differ when restoring on another host.
func (d *Device) SetState(st State) error {
	if st.GuestCID < MinGuestCID || st.GuestCID > 0xffffffff {
		return fmt.Errorf("%w: saved guest CID %d is not in [%d, 2^32)", ErrConfig, st.GuestCID, MinGuestCID)
	}
	d.lifecycle.Lock()
	defer d.lifecycle.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sess != nil {
		return fmt.Errorf("vsock: cannot restore state into an active device")
	}
	d.cid = st.GuestCID
	d.resetEvent = true
	return nil
}
