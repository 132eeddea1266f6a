// Package transport carries a live migration between two tern processes:
// a TCP connection secured by mutual TLS 1.3 (or, when asked for in so
// many words, plain TCP), or a Unix socket on the same host.
//
// Both ends authenticate each other against one CA: the listener requires
// a client certificate, the dialer checks the server's certificate against
// the address it dialled. The TLS handshake finishes inside Dial and
// inside the listener's Accept, so a peer whose certificate does not
// verify is refused before any guest data moves; Accept reports it as a
// *HandshakeError naming the peer and the reason.
//
// Over TLS 1.3 a client finishes its half of the handshake before the
// server has checked the client's certificate. So that Dial, too, learns
// of a refusal before it returns, the listener sends one byte (ASCII ACK)
// once it has verified the client, and Dial waits for it. The migration
// stream starts after that byte.
package transport

import (
	"errors"
	"fmt"
	"net"
	"strings"
)

// Errors this package wraps, for errors.Is.
var (
	// ErrAddr: an address is not in one of the accepted forms.
	ErrAddr = errors.New("bad migration address")
	// ErrOptions: the security options do not fit the address.
	ErrOptions = errors.New("bad migration transport options")
)

// Addr is where a migration listens or connects.
type Addr struct {
	// Network is "tcp" or "unix".
	Network string
	// Address is HOST:PORT for tcp (an IPv6 host in brackets), the
	// socket's path for unix.
	Address string
}

// ParseAddr reads "tcp:HOST:PORT" (HOST may be an IPv6 literal in
// brackets, and may be empty for a listener on every interface) or
// "unix:PATH".
func ParseAddr(s string) (Addr, error) {
	network, rest, ok := strings.Cut(s, ":")
	switch {
	case ok && network == "tcp":
		host, port, err := net.SplitHostPort(rest)
		if err != nil {
			return Addr{}, fmt.Errorf("%w %q: %v; use tcp:HOST:PORT (tcp:[IPv6]:PORT) or unix:PATH", ErrAddr, s, err)
		}
		if strings.Contains(host, ":") && !strings.HasPrefix(rest, "[") {
			// SplitHostPort already insists on brackets; this keeps it so
			// should it ever relax.
			return Addr{}, fmt.Errorf("%w %q: an IPv6 host goes in brackets, as tcp:[%s]:%s", ErrAddr, s, host, port)
		}
		if err := checkPort(port); err != nil {
			return Addr{}, fmt.Errorf("%w %q: %v", ErrAddr, s, err)
		}
		return Addr{Network: "tcp", Address: net.JoinHostPort(host, port)}, nil
	case ok && network == "unix":
		if rest == "" {
			return Addr{}, fmt.Errorf("%w %q: no socket path; use unix:PATH", ErrAddr, s)
		}
		if strings.HasPrefix(rest, "@") {
			// An abstract socket has no file to restrict to mode 0600, so
			// any local user could reach it.
			return Addr{}, fmt.Errorf("%w %q: abstract Unix sockets are not supported; use a path", ErrAddr, s)
		}
		return Addr{Network: "unix", Address: rest}, nil
	}
	return Addr{}, fmt.Errorf("%w %q: use tcp:HOST:PORT (tcp:[IPv6]:PORT) or unix:PATH", ErrAddr, s)
}

func checkPort(port string) error {
	if port == "" {
		return errors.New("no port")
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return fmt.Errorf("port %q is not a number", port)
		}
		n = n*10 + int(c-'0')
		if n > 65535 {
			return fmt.Errorf("port %s is over 65535", port)
		}
	}
	return nil
}

// String gives the address back in the form ParseAddr reads.
func (a Addr) String() string { return a.Network + ":" + a.Address }

// Host is the host part of a tcp address ("" for unix), without brackets:
// the name the server's certificate must carry.
func (a Addr) Host() string {
	if a.Network != "tcp" {
		return ""
	}
	host, _, err := net.SplitHostPort(a.Address)
	if err != nil {
		return ""
	}
	return host
}
