package virtionet

import (
	"errors"
	"os"
	"time"
)

// Interceptor is a service inside tern that the guest reaches through the
// device (Firecracker's MMDS): it sees every frame the guest sends before
// the TAP does, keeps those that are its own, and has frames of its own for
// the guest. The guest's frames are hostile input to it.
type Interceptor interface {
	// Intercept is given an Ethernet frame the guest sent (the vnet
	// header stripped) and reports whether it was the service's; those
	// frames do not reach the TAP. The frame's bytes are reused after
	// it returns.
	Intercept(frame []byte) bool
	// Next returns the next Ethernet frame for the guest, or nil.
	Next() []byte
	// SetNotify registers the function the service calls when Next has
	// frames; it must not block.
	SetNotify(func())
}

// SetInterceptor puts i in front of the TAP. It must be called before the
// driver activates the device.
func (d *Device) SetInterceptor(i Interceptor) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.intercept = i
	// The receive worker sleeps in a TAP read; an expired deadline wakes
	// it to deliver the service's frames (see rxWorker).
	i.SetNotify(func() { d.tap.SetReadDeadline(time.Unix(1, 0)) })
}

// isWake reports whether a TAP read ended at a deadline: a wake-up for
// the service's frames, or Reset.
func isWake(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
