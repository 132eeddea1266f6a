package vmm

import (
	"errors"
	"fmt"
	"strings"
)

// A snapshot's or an incoming migration's configuration is written by
// whoever wrote the file or runs the source, not by the caller restoring
// it. The host resources it names (an image opened read-write, a TAP, the
// bridge it joins, a socket path to listen on) are host authority, so each
// must be confirmed or replaced by the caller before anything is opened.

// ErrUnconfirmed is wrapped by an *UnconfirmedError.
var ErrUnconfirmed = errors.New("host resources named by the saved VM are not confirmed")

// Kinds of HostResource.
const (
	ResourceDisk        = "disk"
	ResourceTAP         = "tap"
	ResourceBridge      = "bridge"
	ResourceVsockSocket = "vsock-socket"
)

// HostResource is a host resource a snapshot or migration names.
type HostResource struct {
	Kind string // Resource*
	Name string // the path or interface name, as the saved VM has it
	// ReadOnly is a disk's mode as the saved VM has it: a read-write
	// disk lets the guest change the file.
	ReadOnly bool
}

func (r HostResource) String() string {
	switch r.Kind {
	case ResourceDisk:
		mode := "read-write"
		if r.ReadOnly {
			mode = "read-only"
		}
		return fmt.Sprintf("disk image %s (%s)", r.Name, mode)
	case ResourceTAP:
		return "TAP " + r.Name
	case ResourceBridge:
		return "bridge " + r.Name
	case ResourceVsockSocket:
		return "vsock socket " + r.Name
	}
	return r.Kind + " " + r.Name
}

// UnconfirmedError lists the host resources a restore or an incoming
// migration would use without the caller having named them. It matches
// ErrUnconfirmed and ErrInvalidConfig.
type UnconfirmedError struct {
	// From says what named them: "snapshot DIR" or "the incoming VM".
	From      string
	Resources []HostResource
}

func (e *UnconfirmedError) Error() string {
	var rs []string
	for _, r := range e.Resources {
		rs = append(rs, r.String())
	}
	return fmt.Sprintf("%s names host resources the caller has not confirmed: %s; confirm each by mapping it to itself or replace it "+
		"(disk paths, TAPs, bridges, the vsock socket), or trust every path it names", e.From, strings.Join(rs, ", "))
}

func (e *UnconfirmedError) Is(target error) bool {
	return target == ErrUnconfirmed || target == ErrInvalidConfig
}
