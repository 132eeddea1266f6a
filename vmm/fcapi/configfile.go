package fcapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// ApplyConfig applies a Firecracker configuration file (--config-file:
// FullConfig's kebab-case sections) to the pre-boot configuration, each
// section as its PUT would; Start then boots it. Unknown keys and
// sections tern does not implement are refused.
func (s *Server) ApplyConfig(data []byte) error {
	var fc FullConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fmt.Errorf("configuration file: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case fc.MemoryHotplug != nil:
		return notImplemented("memory hotplug (memory-hotplug)")
	case len(fc.Pmem) > 0:
		return notImplemented("virtio-pmem devices (pmem)")
	}
	type step struct {
		name string
		v    any
		put  func([]byte) error
	}
	steps := []step{
		{"logger", fc.Logger, s.putLogger},
		{"metrics", fc.Metrics, s.putMetrics},
		{"machine-config", fc.MachineConfig, func(b []byte) error { return s.putMachine(b, false) }},
		{"boot-source", fc.BootSource, s.putBootSource},
	}
	if len(fc.CPUConfig) > 0 {
		// After machine-config, so that it wins over a cpu_template.
		steps = append(steps, step{"cpu-config", fc.CPUConfig, func(b []byte) error {
			body, err := cpuConfigBody(b)
			if err != nil {
				return err
			}
			return s.putCPUConfig(body)
		}})
	}
	for _, d := range fc.Drives {
		if d.DriveID == nil {
			return fmt.Errorf("drives: a drive lacks drive_id")
		}
		id := *d.DriveID
		steps = append(steps, step{"drive " + id, d, func(b []byte) error { return s.putDrive(id, b) }})
	}
	for _, n := range fc.NetworkInterfaces {
		if n.IfaceID == nil {
			return fmt.Errorf("network-interfaces: an interface lacks iface_id")
		}
		id := *n.IfaceID
		steps = append(steps, step{"network interface " + id, n, func(b []byte) error { return s.putNet(id, b) }})
	}
	steps = append(steps,
		step{"vsock", fc.Vsock, s.putVsock},
		step{"entropy", fc.Entropy, s.putEntropy},
		step{"balloon", fc.Balloon, s.putBalloon},
		step{"serial", fc.Serial, s.putSerial},
		step{"mmds-config", fc.MMDSConfig, s.putMMDSConfig},
	)
	for _, st := range steps {
		if isNil(st.v) {
			continue
		}
		b, err := json.Marshal(st.v)
		if err != nil {
			return err
		}
		if err := st.put(b); err != nil {
			return fmt.Errorf("configuration file: %s: %w", st.name, err)
		}
	}
	return nil
}

// isNil reports a section the file leaves out.
func isNil(v any) bool {
	switch p := v.(type) {
	case *Logger:
		return p == nil
	case *Metrics:
		return p == nil
	case *MachineConfig:
		return p == nil
	case *BootSource:
		return p == nil
	case *Vsock:
		return p == nil
	case *Entropy:
		return p == nil
	case *Balloon:
		return p == nil
	case *Serial:
		return p == nil
	case *MMDSConfig:
		return p == nil
	}
	return v == nil
}

// cpuConfigBody is the custom CPU template a configuration file's
// cpu-config gives: inline, or the path of a file that holds it.
func cpuConfigBody(raw []byte) ([]byte, error) {
	var path string
	if json.Unmarshal(raw, &path) != nil {
		return raw, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, faultf("cpu-config: %v", err)
	}
	defer f.Close()
	// The API's body limit bounds a template from a file too.
	data, err := io.ReadAll(io.LimitReader(f, MaxBodyBytes+1))
	if err != nil {
		return nil, faultf("cpu-config: %v", err)
	}
	if len(data) > MaxBodyBytes {
		return nil, faultf("cpu-config: %s is larger than %d bytes", path, MaxBodyBytes)
	}
	return data, nil
}
