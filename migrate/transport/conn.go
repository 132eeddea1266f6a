package transport

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// acceptedByte is what the listener sends once it has verified the client
// (ASCII ACK); Dial waits for it.
const acceptedByte = 0x06

// HandshakeError says that a peer was refused during the TLS handshake (by
// this end, or, when Remote, by the peer), before any migration data
// moved. A listener stays usable after Accept returns one.
type HandshakeError struct {
	// Peer is the other end's address.
	Peer net.Addr
	// Remote: the peer refused this end (it sent a TLS alert or closed
	// the connection before accepting it).
	Remote bool
	// Err is the cause, for errors.Is and errors.As (for example an
	// x509.UnknownAuthorityError).
	Err error
}

func (e *HandshakeError) Error() string {
	if e.Remote {
		return fmt.Sprintf("peer %s refused this end: %s", peerName(e.Peer), reason(e.Err))
	}
	return fmt.Sprintf("peer %s refused: %s", peerName(e.Peer), reason(e.Err))
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func peerName(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return "(unknown)"
	}
	if s := a.String(); s != "" {
		return s
	}
	// The client end of a Unix socket is usually unnamed.
	return "on the Unix socket"
}

// reason says why a handshake failed in the words an operator needs,
// without the layers' prefixes.
func reason(err error) string {
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ua) {
		// Its own text adds which candidate CA failed, rarely the point.
		return "certificate signed by unknown authority"
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return "the TLS handshake timed out"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection closed during the TLS handshake"
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && ve.Err != nil {
		err = ve.Err
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" && oe.Err != nil {
		err = oe.Err
	}
	s := err.Error()
	for _, p := range []string{"tls: ", "x509: "} {
		s = strings.TrimPrefix(s, p)
	}
	return s
}

// remoteRefusal tells a refusal by the peer (an alert, or a close before
// the accepted byte) from one by this end.
func remoteRefusal(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "remote error" {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// Dial connects to a migration listener at addr and, over TLS, completes
// the mutual handshake and waits until the listener has accepted this
// end's certificate. Cancelling ctx abandons the attempt.
func Dial(ctx context.Context, addr Addr, opts Options) (net.Conn, error) {
	if err := opts.Validate(addr); err != nil {
		return nil, err
	}
	var cfg *tls.Config
	if opts.TLS.all() {
		m, err := loadTLS(opts.TLS)
		if err != nil {
			return nil, err
		}
		host := addr.Host()
		if addr.Network == "tcp" && host == "" {
			return nil, fmt.Errorf("%w %s: no host to connect to and check the certificate of", ErrAddr, addr)
		}
		cfg = m.clientConfig(host)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, addr.Network, addr.Address)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	if cfg == nil {
		return c, nil
	}
	deadline := time.Now().Add(opts.handshakeTimeout())
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := c.SetDeadline(deadline); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	// A deadline in the past unblocks the handshake and the read below
	// when ctx is cancelled.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	tc := tls.Client(c, cfg)
	err = tc.Handshake()
	if err == nil {
		var b [1]byte
		if _, err = io.ReadFull(tc, b[:]); err == nil && b[0] != acceptedByte {
			err = fmt.Errorf("the listener sent %#x where it accepts a client: not a tern migration listener", b[0])
		}
	}
	if !stop() {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, context.Cause(ctx))
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, &HandshakeError{Peer: c.RemoteAddr(), Remote: remoteRefusal(err), Err: err})
	}
	if err := c.SetDeadline(time.Time{}); err != nil {
		tc.Close()
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	return tc, nil
}

// Listen opens a migration listener at addr. Over TLS, its Accept returns
// only connections whose mutual handshake succeeded; a peer it refuses
// comes back as a *HandshakeError, and Accept may be called again.
//
// A Unix socket is created mode 0600 (inside a private directory, then
// moved to its path, so no other user can connect in between). Listen
// refuses a path where a live socket answers, replaces a stale one, and
// Close removes the socket. Telling live from stale takes a connection,
// so the live listener sees one that closes at once (an EOF from its
// Accept over TLS, an empty connection without).
func Listen(addr Addr, opts Options) (net.Listener, error) {
	if err := opts.Validate(addr); err != nil {
		return nil, err
	}
	l := &listener{timeout: opts.handshakeTimeout()}
	if opts.TLS.all() {
		m, err := loadTLS(opts.TLS)
		if err != nil {
			return nil, err
		}
		l.tls = m.serverConfig()
	}
	switch addr.Network {
	case "tcp":
		inner, err := net.Listen("tcp", addr.Address)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		l.inner = inner
	case "unix":
		inner, info, err := listenUnix(addr.Address)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		l.inner, l.unixPath, l.unixInfo = inner, addr.Address, info
	}
	return l, nil
}

// maxUnixPath is the longest socket path the kernel takes (sun_path less
// its terminating NUL).
const maxUnixPath = 107

func listenUnix(path string) (*net.UnixListener, os.FileInfo, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, nil, fmt.Errorf("another process already listens at %s", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, nil, fmt.Errorf("cannot tell whether the socket at %s is live: %w", path, err)
		}
		// Stale: nobody listens. The rename below replaces it.
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	// bind(2) creates the socket file with the umask's mode, and the
	// umask is the whole process's; so bind in a mode 0700 directory,
	// tighten the file, and only then move it where peers look.
	tmp, err := os.MkdirTemp(filepath.Dir(path), ".tern")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(tmp)
	tmpPath := filepath.Join(tmp, "s")
	if len(tmpPath) > maxUnixPath {
		return nil, nil, fmt.Errorf("socket path too long: %s needs %d bytes beside it and the kernel takes %d; use a shorter path", path, len(tmpPath), maxUnixPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmpPath, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	// The file moves; Close removes it at its final path instead.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(tmpPath, 0o600); err != nil {
		ln.Close()
		return nil, nil, err
	}
	if err := os.Rename(tmpPath, path); err != nil {
		ln.Close()
		return nil, nil, err
	}
	info, err := os.Lstat(path)
	if err != nil {
		ln.Close()
		return nil, nil, err
	}
	return ln, info, nil
}

// listener completes the TLS handshake inside Accept.
type listener struct {
	inner    net.Listener
	tls      *tls.Config // nil: plain
	timeout  time.Duration
	unixPath string      // "" for tcp
	unixInfo os.FileInfo // the socket file Listen made

	mu      sync.Mutex
	pending net.Conn // in its handshake, closed by Close
	closed  bool

	removeOnce sync.Once
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.inner.Accept()
	if err != nil {
		return nil, fmt.Errorf("accept a migration: %w", err)
	}
	if l.tls == nil {
		return c, nil
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return nil, fmt.Errorf("accept a migration: %w", net.ErrClosed)
	}
	l.pending = c
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.pending = nil
		l.mu.Unlock()
	}()

	err = c.SetDeadline(time.Now().Add(l.timeout))
	tc := tls.Server(c, l.tls)
	if err == nil {
		err = tc.Handshake()
	}
	if err == nil {
		_, err = tc.Write([]byte{acceptedByte})
	}
	if err == nil {
		err = c.SetDeadline(time.Time{})
	}
	if err != nil {
		c.Close()
		var oe *net.OpError
		remote := errors.As(err, &oe) && oe.Op == "remote error"
		return nil, &HandshakeError{Peer: c.RemoteAddr(), Remote: remote, Err: err}
	}
	return tc, nil
}

func (l *listener) Close() error {
	l.mu.Lock()
	l.closed = true
	if l.pending != nil {
		l.pending.Close()
	}
	l.mu.Unlock()
	err := l.inner.Close()
	if l.unixPath != "" {
		l.removeOnce.Do(func() {
			// Only our own socket: another process may have taken the
			// path since.
			if fi, serr := os.Lstat(l.unixPath); serr == nil && os.SameFile(fi, l.unixInfo) {
				if rerr := os.Remove(l.unixPath); rerr != nil && err == nil {
					err = rerr
				}
			}
		})
	}
	return err
}

func (l *listener) Addr() net.Addr {
	if l.unixPath != "" {
		return &net.UnixAddr{Name: l.unixPath, Net: "unix"}
	}
	return l.inner.Addr()
}
