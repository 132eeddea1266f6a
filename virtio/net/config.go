package virtionet

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"unicode"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// Config says which TAP the device uses and what the guest sees.
type Config struct {
	// ID names the device for the VM's users (Firecracker's iface_id):
	// up to IDMax printable ASCII bytes, optional.
	ID string `json:",omitempty"`
	// TAP is the host interface name. An existing TAP is used as is and
	// left in place on Close; a missing one is created and goes away
	// on Close.
	TAP string
	// TAPFile, if set, is a /dev/net/tun descriptor the caller already
	// attached to a TAP (TUNSETIFF with IFF_TAP, IFF_NO_PI and
	// IFF_VNET_HDR, single queue), used instead of opening TAP: the caller
	// keeps CAP_NET_ADMIN, tern needs none. TAP, if set, must be the
	// interface it is attached to, and is filled in from it otherwise.
	// The caller brings the TAP up and into a bridge (Bridge must be
	// empty). The device works on a duplicate of the descriptor: the
	// caller still owns TAPFile and may close it once New returned; Close
	// closes the duplicate and leaves the TAP to the caller. The
	// descriptor is made non-blocking (the flag is shared by both).
	// Never serialized.
	TAPFile *os.File `json:"-"`
	// MAC is the guest's address, reported in the configuration space.
	// nil picks a random locally administered unicast address.
	MAC net.HardwareAddr
	// Bridge, when set, names an existing Linux bridge the TAP joins.
	Bridge string
	// RxRateLimit and TxRateLimit, if set, limit what the guest receives
	// and sends: Bandwidth in frame bytes (the vnet header not counted),
	// Ops in frames. Device.RateLimiters changes them at run time.
	RxRateLimit *ratelimit.Config `json:",omitempty"`
	TxRateLimit *ratelimit.Config `json:",omitempty"`
}

// Errors New returns for a configuration it cannot use; they are wrapped
// with the offending value.
var (
	ErrBadName      = errors.New("invalid interface name")
	ErrBadMAC       = errors.New("invalid guest MAC address")
	ErrNoBridge     = errors.New("bridge not found")
	ErrNotBridge    = errors.New("interface is not a bridge")
	ErrNotTAP       = errors.New("interface exists but is not a TAP device")
	ErrTAPUnusable  = errors.New("cannot use TAP device")
	ErrDeviceClosed = errors.New("virtio-net device is closed")
)

// IDMax bounds Config.ID.
const IDMax = 64

// ErrBadID is wrapped by Validate's errors for Config.ID.
var ErrBadID = errors.New("invalid network device id")

func validateID(id string) error {
	if len(id) > IDMax {
		return fmt.Errorf("%w: %q is %d bytes, more than %d", ErrBadID, id, len(id), IDMax)
	}
	for i := 0; i < len(id); i++ {
		if b := id[i]; b <= ' ' || b > '~' {
			return fmt.Errorf("%w: %q has byte %#x at %d, not printable ASCII", ErrBadID, id, b, i)
		}
	}
	return nil
}

// ifNameMax is IFNAMSIZ-1: the kernel's interface names are 15 bytes plus
// the terminating NUL.
const ifNameMax = 15

// validateIfName applies the kernel's dev_valid_name rules, and refuses
// '%', which TUNSETIFF would treat as a pattern and replace by a number,
// so that the name tern asked for is the name it gets.
func validateIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrBadName)
	case len(name) > ifNameMax:
		return fmt.Errorf("%w: %q is %d bytes, more than %d", ErrBadName, name, len(name), ifNameMax)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	if i := strings.IndexFunc(name, func(r rune) bool {
		return r == '/' || r == ':' || r == '%' || r == 0 || unicode.IsSpace(r)
	}); i >= 0 {
		return fmt.Errorf("%w: %q contains %q", ErrBadName, name, name[i])
	}
	return nil
}

// validateMAC checks that mac can be a guest's own address: six bytes,
// unicast (bit 0 of the first byte clear) and not all zero.
func validateMAC(mac net.HardwareAddr) error {
	if len(mac) != 6 {
		return fmt.Errorf("%w: %q has %d bytes, want 6", ErrBadMAC, mac.String(), len(mac))
	}
	if mac[0]&1 != 0 {
		return fmt.Errorf("%w: %s is a multicast address", ErrBadMAC, mac)
	}
	if string(mac) == "\x00\x00\x00\x00\x00\x00" {
		return fmt.Errorf("%w: %s is all zero", ErrBadMAC, mac)
	}
	return nil
}

// randomMAC returns a random unicast address with the locally
// administered bit set, so it cannot clash with a vendor-assigned one.
func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac) // never fails: crypto/rand aborts the program instead
	mac[0] = mac[0]&^1 | 2
	if string(mac[1:]) == "\x00\x00\x00\x00\x00" && mac[0] == 2 {
		mac[5] = 1
	}
	return mac
}
