package vmm

import (
	"encoding/json"
	"fmt"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/balloon"
	"github.com/ternvm/tern/virtio/block"
	virtionet "github.com/ternvm/tern/virtio/net"
	"github.com/ternvm/tern/virtio/rng"
	"github.com/ternvm/tern/virtio/vsock"
)

// deviceStateOf returns the device type's own state, for a snapshot.
func deviceStateOf(d virtio.Device) (any, error) {
	switch d := d.(type) {
	case *block.Device:
		return d.State(), nil
	case *virtionet.Device:
		return d.State(), nil
	case *vsock.Device:
		return d.State(), nil
	case *balloon.Device:
		return d.State(), nil
	case *rng.Device:
		return d.State(), nil
	}
	return nil, fmt.Errorf("device type %T has no snapshot state", d)
}

// setDeviceState restores a device type's own state from raw. The device
// was built from the snapshot's configuration with the restore's host
// overrides applied; the saved host resource names are replaced by the
// device's own before the check, since only they may differ.
func setDeviceState(d virtio.Device, raw json.RawMessage) error {
	decode := func(v any) error {
		if err := json.Unmarshal(raw, v); err != nil {
			return fmt.Errorf("decode saved state: %w", err)
		}
		return nil
	}
	switch d := d.(type) {
	case *block.Device:
		var st block.State
		if err := decode(&st); err != nil {
			return err
		}
		st.Path = d.State().Path
		return d.SetState(st)
	case *virtionet.Device:
		var st virtionet.State
		if err := decode(&st); err != nil {
			return err
		}
		st.TAP = d.TAP()
		return d.SetState(st)
	case *vsock.Device:
		var st vsock.State
		if err := decode(&st); err != nil {
			return err
		}
		return d.SetState(st)
	case *balloon.Device:
		var st balloon.State
		if err := decode(&st); err != nil {
			return err
		}
		return d.SetState(st)
	case *rng.Device:
		var st rng.State
		if err := decode(&st); err != nil {
			return err
		}
		return d.SetState(st)
	}
	return fmt.Errorf("device type %T has no snapshot state", d)
}
