package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/ternvm/tern/migrate/transport"
)

func TestGenerate(t *testing.T) {
	dir := t.TempDir()
	f, err := Generate(dir, []string{"127.0.0.1", "::1", "dst.example"})
	if err != nil {
		t.Fatal(err)
	}
	pool := func(file string) *x509.CertPool {
		pem, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(pem) {
			t.Fatalf("%s: no certificate", file)
		}
		return p
	}
	ca, rogueCA := pool(f.CA), pool(f.RogueCA)
	leaf := func(cert, key string) *x509.Certificate {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(key); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", key, fi.Mode(), err)
		}
		return pair.Leaf
	}
	for _, c := range []struct {
		cert, key string
		trusted   *x509.CertPool
		other     *x509.CertPool
	}{
		{f.ServerCert, f.ServerKey, ca, rogueCA},
		{f.ClientCert, f.ClientKey, ca, rogueCA},
		{f.RogueCert, f.RogueKey, rogueCA, ca},
	} {
		l := leaf(c.cert, c.key)
		for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
			for _, host := range []string{"127.0.0.1", "::1", "dst.example"} {
				if _, err := l.Verify(x509.VerifyOptions{Roots: c.trusted, DNSName: host, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
					t.Errorf("%s for %s, usage %v: %v", c.cert, host, usage, err)
				}
			}
			var ua x509.UnknownAuthorityError
			if _, err := l.Verify(x509.VerifyOptions{Roots: c.other, KeyUsages: []x509.ExtKeyUsage{usage}}); !errors.As(err, &ua) {
				t.Errorf("%s against the other CA: %v; want unknown authority", c.cert, err)
			}
		}
		if _, err := l.Verify(x509.VerifyOptions{Roots: c.trusted, DNSName: "other.example"}); err == nil {
			t.Errorf("%s verifies for a host it does not name", c.cert)
		}
		if l.NotAfter.Before(time.Now().Add(time.Hour)) || l.NotBefore.After(time.Now()) {
			t.Errorf("%s valid %v to %v; want now and for a while", c.cert, l.NotBefore, l.NotAfter)
		}
	}
	if _, err := Generate(t.TempDir(), nil); err == nil {
		t.Errorf("Generate with no hosts succeeded")
	}
}

// TestWithTransport runs the files through migrate/transport as the
// end-to-end tests will: the good pair connects, the rogue is refused.
func TestWithTransport(t *testing.T) {
	f, err := Generate(t.TempDir(), []string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	srv := transport.Options{TLS: transport.TLSFiles{CertFile: f.ServerCert, KeyFile: f.ServerKey, CAFile: f.CA}}
	good := transport.Options{TLS: transport.TLSFiles{CertFile: f.ClientCert, KeyFile: f.ClientKey, CAFile: f.CA}}
	rogue := transport.Options{TLS: transport.TLSFiles{CertFile: f.RogueCert, KeyFile: f.RogueKey, CAFile: f.CA}}
	addr, _ := transport.ParseAddr("tcp:127.0.0.1:0")
	ln, err := transport.Listen(addr, srv)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addr, _ = transport.ParseAddr("tcp:127.0.0.1:" + port)

	for _, c := range []struct {
		name   string
		opts   transport.Options
		accept string // the error Accept returns, "" for none
	}{
		{"good", good, ""},
		{"rogue", rogue, "peer 127.0.0.1 refused: certificate signed by unknown authority"},
	} {
		ch := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err == nil {
				conn.Close()
			}
			ch <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		conn, dialErr := transport.Dial(ctx, addr, c.opts)
		cancel()
		if conn != nil {
			conn.Close()
		}
		acceptErr := <-ch
		if c.accept == "" {
			if dialErr != nil || acceptErr != nil {
				t.Errorf("%s: Dial %v, Accept %v; want connected", c.name, dialErr, acceptErr)
			}
			continue
		}
		if dialErr == nil {
			t.Errorf("%s: Dial succeeded; want refused", c.name)
		}
		if acceptErr == nil || acceptErr.Error() != c.accept {
			t.Errorf("%s: Accept %v; want %q", c.name, acceptErr, c.accept)
		}
	}
}
