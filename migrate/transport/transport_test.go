package transport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a CA made for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // its certificate, PEM
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), name+".pem")
	writePEM(t, file, "CERTIFICATE", der)
	return &testCA{cert: cert, key: key, file: file}
}

// issue makes a leaf for hosts (IP or DNS SANs), usable by both ends,
// valid from notBefore to notAfter, and returns TLSFiles with ca as the
// trusted CA (which need not be the issuer).
func (issuer *testCA) issue(t *testing.T, hosts []string, notBefore, notAfter time.Time, trust *testCA) TLSFiles {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "tern test"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer.cert, &key.PublicKey, issuer.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := TLSFiles{CertFile: filepath.Join(dir, "cert.pem"), KeyFile: filepath.Join(dir, "key.pem"), CAFile: trust.file}
	writePEM(t, f.CertFile, "CERTIFICATE", der)
	writePEM(t, f.KeyFile, "PRIVATE KEY", keyDER)
	return f
}

func (issuer *testCA) good(t *testing.T, hosts ...string) TLSFiles {
	return issuer.issue(t, hosts, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), issuer)
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustParse(t *testing.T, s string) Addr {
	t.Helper()
	a, err := ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

type result struct {
	conn net.Conn
	err  error
}

// connect listens on addr with server options, dials it with client
// options, and returns both ends' results of one Accept and one Dial.
func connect(t *testing.T, addr Addr, server, client Options) (accepted, dialled result) {
	t.Helper()
	ln, err := Listen(addr, server)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	if addr.Network == "tcp" {
		// The port the kernel chose, with the host as given (a name
		// stays a name for the certificate check).
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		addr = mustParse(t, "tcp:"+net.JoinHostPort(addr.Host(), port))
	}
	ch := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ch <- result{c, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, addr, client)
	dialled = result{c, err}
	accepted = <-ch
	for _, r := range []result{accepted, dialled} {
		if r.conn != nil {
			t.Cleanup(func() { r.conn.Close() })
		}
	}
	return accepted, dialled
}

// exchange checks that bytes go both ways.
func exchange(t *testing.T, a, b net.Conn) {
	t.Helper()
	go func() { a.Write([]byte("ping")) }()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(b, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v; want ping", buf, err)
	}
	go func() { b.Write([]byte("pong")) }()
	if _, err := io.ReadFull(a, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("read %q, %v; want pong", buf, err)
	}
}

func TestParseAddr(t *testing.T) {
	good := map[string]Addr{
		"tcp:10.0.0.1:7000":      {"tcp", "10.0.0.1:7000"},
		"tcp:host.example:7000":  {"tcp", "host.example:7000"},
		"tcp:[::1]:7000":         {"tcp", "[::1]:7000"},
		"tcp:[fe80::1%eth0]:9":   {"tcp", "[fe80::1%eth0]:9"},
		"tcp::7000":              {"tcp", ":7000"},
		"unix:/run/tern/m.sock":  {"unix", "/run/tern/m.sock"},
		"unix:relative/dir/sock": {"unix", "relative/dir/sock"},
	}
	for in, want := range good {
		got, err := ParseAddr(in)
		if err != nil || got != want {
			t.Errorf("ParseAddr(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		if err == nil && got.String() != in {
			t.Errorf("ParseAddr(%q).String() = %q", in, got.String())
		}
	}
	if h := mustParse(t, "tcp:[::1]:7000").Host(); h != "::1" {
		t.Errorf("Host of [::1] = %q", h)
	}
	for _, in := range []string{"", "10.0.0.1:7000", "tcp:10.0.0.1", "tcp:::1:7000", "tcp:host:", "tcp:host:http",
		"tcp:host:65536", "udp:1.2.3.4:5", "unix:", "unix:@abstract", "TCP:1.2.3.4:5", "vsock:3:1000"} {
		_, err := ParseAddr(in)
		if !errors.Is(err, ErrAddr) {
			t.Errorf("ParseAddr(%q) = %v; want ErrAddr", in, err)
			continue
		}
		if !strings.Contains(err.Error(), "tcp:HOST:PORT") && !strings.Contains(err.Error(), "port") &&
			!strings.Contains(err.Error(), "unix:PATH") && !strings.Contains(err.Error(), "abstract") {
			t.Errorf("ParseAddr(%q) = %v; want the accepted forms named", in, err)
		}
	}
	if _, err := ParseAddr("ftp:x"); err == nil || !strings.Contains(err.Error(), "use tcp:HOST:PORT (tcp:[IPv6]:PORT) or unix:PATH") {
		t.Errorf("ParseAddr(ftp:x) = %v; want the accepted forms", err)
	}
}

func TestValidate(t *testing.T) {
	tcp := mustParse(t, "tcp:10.0.0.1:7000")
	unix := mustParse(t, "unix:/run/m.sock")
	all := TLSFiles{"c.pem", "k.pem", "ca.pem"}
	cases := []struct {
		addr Addr
		opts Options
		want string // "" for valid
	}{
		{tcp, Options{}, "bad migration transport options: tcp:10.0.0.1:7000 needs --tls-cert, --tls-key and --tls-ca (mutual TLS), or --insecure for plain TCP"},
		{tcp, Options{TLS: all}, ""},
		{tcp, Options{Insecure: true}, ""},
		{tcp, Options{TLS: all, Insecure: true}, "--insecure and the --tls-* files exclude each other"},
		{tcp, Options{TLS: TLSFiles{CAFile: "ca.pem"}, Insecure: true}, "--insecure and the --tls-* files exclude each other"},
		{tcp, Options{TLS: TLSFiles{CertFile: "c.pem"}}, "mutual TLS also needs --tls-key and --tls-ca"},
		{tcp, Options{TLS: TLSFiles{CertFile: "c.pem", KeyFile: "k.pem"}}, "mutual TLS also needs --tls-ca"},
		{tcp, Options{TLS: TLSFiles{CAFile: "ca.pem"}}, "mutual TLS also needs --tls-cert and --tls-key"},
		{unix, Options{}, ""},
		{unix, Options{TLS: all}, ""},
		{unix, Options{TLS: TLSFiles{KeyFile: "k.pem"}}, "mutual TLS also needs --tls-cert and --tls-ca"},
		{Addr{"udp", "x:1"}, Options{Insecure: true}, "unknown network"},
	}
	for _, c := range cases {
		err := c.opts.Validate(c.addr)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("Validate(%s, %+v) = %v; want nil", c.addr, c.opts, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("Validate(%s, %+v) = %v; want %q", c.addr, c.opts, err, c.want)
		}
	}
	// Listen and Dial refuse the same before touching the network.
	if _, err := Listen(tcp, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("Listen(plain tcp) = %v; want ErrOptions", err)
	}
	if _, err := Dial(context.Background(), tcp, Options{}); !errors.Is(err, ErrOptions) {
		t.Errorf("Dial(plain tcp) = %v; want ErrOptions", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newCA(t, "ca")
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			srv, cli := ca.good(t, host), ca.good(t, "client")
			acc, dia := connect(t, mustParse(t, "tcp:"+host+":0"), Options{TLS: srv}, Options{TLS: cli})
			if acc.err != nil || dia.err != nil {
				t.Fatalf("Accept: %v; Dial: %v", acc.err, dia.err)
			}
			exchange(t, acc.conn, dia.conn)
			st := acc.conn.(*tls.Conn).ConnectionState()
			if st.Version != tls.VersionTLS13 || len(st.PeerCertificates) == 0 {
				t.Errorf("version %#x, %d peer certificates; want TLS 1.3 with the client's", st.Version, len(st.PeerCertificates))
			}
		})
	}
}

// wantRefused checks that the listener refused the client with cause, and
// that Dial failed too.
func wantRefused(t *testing.T, acc, dia result, accWant, diaWant string) {
	t.Helper()
	if dia.err == nil {
		t.Errorf("Dial succeeded; want it refused")
	} else if !strings.Contains(dia.err.Error(), diaWant) {
		t.Errorf("Dial: %v; want %q", dia.err, diaWant)
	}
	var he *HandshakeError
	if !errors.As(acc.err, &he) {
		t.Fatalf("Accept: %v; want a *HandshakeError", acc.err)
	}
	if acc.err.Error() != accWant {
		t.Errorf("Accept: %q; want %q", acc.err, accWant)
	}
}

func TestClientFromOtherCA(t *testing.T) {
	ca, rogue := newCA(t, "ca"), newCA(t, "rogue")
	srv := ca.good(t, "127.0.0.1")
	cli := rogue.issue(t, []string{"client"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), ca)
	acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: srv}, Options{TLS: cli})
	wantRefused(t, acc, dia, "peer 127.0.0.1 refused: certificate signed by unknown authority", "refused this end")
	var ua x509.UnknownAuthorityError
	if !errors.As(acc.err, &ua) {
		t.Errorf("Accept: %v does not wrap x509.UnknownAuthorityError", acc.err)
	}
}

func TestServerFromOtherCA(t *testing.T) {
	ca, rogue := newCA(t, "ca"), newCA(t, "rogue")
	srv := rogue.issue(t, []string{"127.0.0.1"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), ca)
	cli := ca.good(t, "client")
	acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: srv}, Options{TLS: cli})
	if dia.err == nil || !strings.Contains(dia.err.Error(), "peer 127.0.0.1 refused: certificate signed by unknown authority") {
		t.Errorf("Dial: %v; want the server refused", dia.err)
	}
	var he *HandshakeError
	if !errors.As(acc.err, &he) || !he.Remote {
		t.Errorf("Accept: %v; want a *HandshakeError from the client's refusal", acc.err)
	}
}

func TestServerNameMismatch(t *testing.T) {
	ca := newCA(t, "ca")
	srv := ca.good(t, "10.9.9.9", "elsewhere.example")
	acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: srv}, Options{TLS: ca.good(t, "client")})
	if dia.err == nil || !strings.Contains(dia.err.Error(), "not 127.0.0.1") {
		t.Errorf("Dial: %v; want a host name mismatch", dia.err)
	}
	if acc.err == nil {
		t.Errorf("Accept succeeded for a client that refused the server")
	}
}

func TestNoClientCert(t *testing.T) {
	ca := newCA(t, "ca")
	srv := ca.good(t, "127.0.0.1")
	ln, err := Listen(mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: srv})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		pool := x509.NewCertPool()
		pool.AddCert(ca.cert)
		c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
		if err == nil {
			io.Copy(io.Discard, c) // until the server's alert
			c.Close()
		}
	}()
	_, err = ln.Accept()
	if err == nil || err.Error() != "peer 127.0.0.1 refused: client didn't provide a certificate" {
		t.Errorf("Accept: %v; want a refusal for the missing client certificate", err)
	}
}

func TestExpired(t *testing.T) {
	ca := newCA(t, "ca")
	past := time.Now().Add(-2 * time.Hour)
	expired := func(host string) TLSFiles { return ca.issue(t, []string{host}, past, past.Add(time.Hour), ca) }
	t.Run("client", func(t *testing.T) {
		acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: ca.good(t, "127.0.0.1")}, Options{TLS: expired("client")})
		if dia.err == nil {
			t.Errorf("Dial succeeded with an expired client certificate")
		}
		if acc.err == nil || !strings.HasPrefix(acc.err.Error(), "peer 127.0.0.1 refused: certificate has expired or is not yet valid") {
			t.Errorf("Accept: %v; want the expired certificate refused", acc.err)
		}
	})
	t.Run("server", func(t *testing.T) {
		acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: expired("127.0.0.1")}, Options{TLS: ca.good(t, "client")})
		if dia.err == nil || !strings.Contains(dia.err.Error(), "refused: certificate has expired or is not yet valid") {
			t.Errorf("Dial: %v; want the expired certificate refused", dia.err)
		}
		if acc.err == nil {
			t.Errorf("Accept succeeded though the client refused")
		}
	})
}

func TestHandshakeTimeout(t *testing.T) {
	ca := newCA(t, "ca")
	ln, err := Listen(mustParse(t, "tcp:127.0.0.1:0"), Options{TLS: ca.good(t, "127.0.0.1"), HandshakeTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	start := time.Now()
	_, err = ln.Accept()
	if err == nil || err.Error() != "peer 127.0.0.1 refused: the TLS handshake timed out" {
		t.Errorf("Accept: %v; want a timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Accept took %v", d)
	}
	// The listener is still usable.
	acc, dia := func() (result, result) {
		ch := make(chan result, 1)
		go func() { c, err := ln.Accept(); ch <- result{c, err} }()
		c, err := Dial(context.Background(), mustParse(t, "tcp:"+ln.Addr().String()), Options{TLS: ca.good(t, "c")})
		return <-ch, result{c, err}
	}()
	if acc.err != nil || dia.err != nil {
		t.Fatalf("after a timeout: Accept %v, Dial %v", acc.err, dia.err)
	}
	exchange(t, acc.conn, dia.conn)
	acc.conn.Close()
	dia.conn.Close()
}

func TestInsecure(t *testing.T) {
	acc, dia := connect(t, mustParse(t, "tcp:127.0.0.1:0"), Options{Insecure: true}, Options{Insecure: true})
	if acc.err != nil || dia.err != nil {
		t.Fatalf("Accept: %v; Dial: %v", acc.err, dia.err)
	}
	exchange(t, acc.conn, dia.conn)
	if _, ok := acc.conn.(*tls.Conn); ok {
		t.Errorf("insecure connection is TLS")
	}
}

func TestUnix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.sock")
	addr := mustParse(t, "unix:"+path)
	t.Run("plain", func(t *testing.T) {
		ln, err := Listen(addr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("socket mode %v; want a socket, 0600", fi.Mode())
		}
		if got := ln.Addr().String(); got != path {
			t.Errorf("Addr() = %q; want %q", got, path)
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Errorf("directory holds %d entries; want the socket alone", len(entries))
		}
		ch := make(chan result, 1)
		go func() { c, err := ln.Accept(); ch <- result{c, err} }()
		c, err := Dial(context.Background(), addr, Options{})
		if err != nil {
			t.Fatal(err)
		}
		a := <-ch
		if a.err != nil {
			t.Fatal(a.err)
		}
		exchange(t, a.conn, c)
		c.Close()
		a.conn.Close()
		// A live socket is not taken over. (Its probe queues a connection
		// at ln, so this comes after ln's one Accept.)
		// A live socket is not taken over.
		if _, err := Listen(addr, Options{}); err == nil || !strings.Contains(err.Error(), "already listens") {
			t.Errorf("second Listen: %v; want refused", err)
		}
		ln.Close()
		if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after Close: %v; want the socket removed", err)
		}
	})
	t.Run("stale", func(t *testing.T) {
		// A socket file whose listener died without removing it.
		stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		stale.SetUnlinkOnClose(false)
		stale.Close()
		ln, err := Listen(addr, Options{})
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		ln.Close()
	})
	t.Run("not a socket", func(t *testing.T) {
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		if _, err := Listen(addr, Options{}); err == nil || !strings.Contains(err.Error(), "is not a socket") {
			t.Errorf("Listen over a file: %v; want refused", err)
		}
	})
	t.Run("tls", func(t *testing.T) {
		ca := newCA(t, "ca")
		acc, dia := connect(t, addr, Options{TLS: ca.good(t, "server")}, Options{TLS: ca.good(t, "client")})
		if acc.err != nil || dia.err != nil {
			t.Fatalf("Accept: %v; Dial: %v", acc.err, dia.err)
		}
		exchange(t, acc.conn, dia.conn)
		rogue := newCA(t, "rogue")
		srv := rogue.issue(t, []string{"server"}, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), ca)
		acc, dia = connect(t, mustParse(t, "unix:"+filepath.Join(t.TempDir(), "rogue.sock")), Options{TLS: srv}, Options{TLS: ca.good(t, "client")})
		if dia.err == nil || !strings.Contains(dia.err.Error(), "certificate signed by unknown authority") {
			t.Errorf("Dial to a rogue server over unix: %v; want refused", dia.err)
		}
	})
}

func TestDialCancelled(t *testing.T) {
	ca := newCA(t, "ca")
	// A listener that never answers the handshake.
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	go func() {
		c, err := raw.Accept()
		if err == nil {
			defer c.Close()
			io.Copy(io.Discard, c)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = Dial(ctx, mustParse(t, "tcp:"+raw.Addr().String()), Options{TLS: ca.good(t, "c")})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial: %v; want context.Canceled", err)
	}
}
