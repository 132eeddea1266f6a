package mmds

import (
	"errors"
	"fmt"
	"net/netip"
)

// DefaultIPv4 is the service's address unless configured otherwise.
var DefaultIPv4 = netip.AddrFrom4([4]byte{169, 254, 169, 254})

// ErrBadConfig is wrapped by Config.Validate's errors.
var ErrBadConfig = errors.New("invalid MMDS configuration")

// Config says how guests reach the service, as Firecracker's PUT
// /mmds/config does.
type Config struct {
	// Version is 1 (plain GETs) or 2 (session tokens); 0 means 1.
	Version int
	// IPv4 is the service's address; the zero Addr means DefaultIPv4.
	IPv4 netip.Addr
	// Interfaces are the ids of the network devices the guest reaches
	// the service through.
	Interfaces []string
	// IMDSCompat answers in IMDS format (text/plain) whatever the
	// request's Accept header says, as EC2's IMDS does.
	IMDSCompat bool
}

// WithDefaults fills the unset fields.
func (c Config) WithDefaults() Config {
	if c.Version == 0 {
		c.Version = 1
	}
	if !c.IPv4.IsValid() {
		c.IPv4 = DefaultIPv4
	}
	return c
}

// Validate checks the configuration (after WithDefaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.Version != 1 && c.Version != 2:
		return fmt.Errorf("%w: version %d (want 1 or 2)", ErrBadConfig, c.Version)
	case !c.IPv4.Is4():
		return fmt.Errorf("%w: address %s is not IPv4", ErrBadConfig, c.IPv4)
	case !c.IPv4.IsLinkLocalUnicast() || c.IPv4 == netip.AddrFrom4([4]byte{169, 254, 0, 0}) || c.IPv4 == netip.AddrFrom4([4]byte{169, 254, 255, 255}):
		// As Firecracker: a link-local host address, not the range's
		// first or last (169.254.0.0/16 minus its ends).
		return fmt.Errorf("%w: address %s is not a link-local host address (169.254.0.1 to 169.254.255.254)", ErrBadConfig, c.IPv4)
	case len(c.Interfaces) == 0:
		return fmt.Errorf("%w: no network interface is allowed to reach it", ErrBadConfig)
	}
	seen := map[string]bool{}
	for _, id := range c.Interfaces {
		if id == "" {
			return fmt.Errorf("%w: empty interface id", ErrBadConfig)
		}
		if seen[id] {
			return fmt.Errorf("%w: interface %q listed twice", ErrBadConfig, id)
		}
		seen[id] = true
	}
	return nil
}
