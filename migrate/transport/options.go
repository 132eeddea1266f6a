package transport

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// TLSFiles name the PEM files for mutual TLS.
type TLSFiles struct {
	CertFile string // this end's certificate (chain)
	KeyFile  string // its private key
	CAFile   string // the CA the peer's certificate must chain to
}

func (f TLSFiles) any() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }
func (f TLSFiles) all() bool { return f.CertFile != "" && f.KeyFile != "" && f.CAFile != "" }

// Options secure a migration connection.
type Options struct {
	TLS TLSFiles
	// Insecure allows plain TCP: guest memory then crosses the network
	// readable and alterable by anyone on the path.
	Insecure bool
	// HandshakeTimeout bounds the TLS handshake (and the wait for the
	// listener's Accepted byte); zero means DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// DefaultHandshakeTimeout is the TLS handshake bound when none is given.
const DefaultHandshakeTimeout = 10 * time.Second

func (o Options) handshakeTimeout() time.Duration {
	if o.HandshakeTimeout > 0 {
		return o.HandshakeTimeout
	}
	return DefaultHandshakeTimeout
}

// Validate checks that o fits addr: a tcp address needs all three TLS
// files or Insecure, never both; a unix address needs neither (the
// socket's file mode guards it) but uses TLS when all three files are
// given. The messages name the tern flags that set each field.
func (o Options) Validate(addr Addr) error {
	switch addr.Network {
	case "tcp", "unix":
	default:
		return fmt.Errorf("%w: unknown network %q in %s", ErrAddr, addr.Network, addr)
	}
	if o.TLS.any() && o.Insecure {
		return fmt.Errorf("%w: %s: --insecure and the --tls-* files exclude each other; give one or the other", ErrOptions, addr)
	}
	if o.TLS.any() && !o.TLS.all() {
		var missing []string
		if o.TLS.CertFile == "" {
			missing = append(missing, "--tls-cert")
		}
		if o.TLS.KeyFile == "" {
			missing = append(missing, "--tls-key")
		}
		if o.TLS.CAFile == "" {
			missing = append(missing, "--tls-ca")
		}
		return fmt.Errorf("%w: %s: mutual TLS also needs %s", ErrOptions, addr, strings.Join(missing, " and "))
	}
	if addr.Network == "tcp" && !o.TLS.all() && !o.Insecure {
		return fmt.Errorf("%w: %s needs --tls-cert, --tls-key and --tls-ca (mutual TLS), or --insecure for plain TCP", ErrOptions, addr)
	}
	return nil
}

// tlsMaterial is what the three files hold.
type tlsMaterial struct {
	cert tls.Certificate
	pool *x509.CertPool
}

func loadTLS(f TLSFiles) (tlsMaterial, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tlsMaterial{}, fmt.Errorf("TLS certificate %s with key %s: %w", f.CertFile, f.KeyFile, err)
	}
	caPEM, err := os.ReadFile(f.CAFile)
	if err != nil {
		return tlsMaterial{}, fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return tlsMaterial{}, fmt.Errorf("TLS CA %s: no PEM certificate in it", f.CAFile)
	}
	return tlsMaterial{cert: cert, pool: pool}, nil
}

func (m tlsMaterial) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{m.cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    m.pool,
		// A migration is one long connection; resumption buys nothing.
		SessionTicketsDisabled: true,
	}
}

// clientConfig checks the server against host, or, with no host (a Unix
// socket), checks only that its certificate chains to the CA: the socket
// path already names the peer, and there is no name to compare with.
func (m tlsMaterial) clientConfig(host string) *tls.Config {
	cert := m.cert
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Always send the certificate: Go's default sends none when it
		// was not issued by a CA the server names, and the server could
		// then only say "no certificate" instead of why it is refused.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil },
		RootCAs:              m.pool,
		ServerName:           host,
	}
	if host == "" {
		pool := m.pool
		// Go verifies the chain only together with a name; with no name
		// its own check is switched off and this one does the chain.
		c.InsecureSkipVerify = true
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
				Roots:         pool,
				Intermediates: inter,
				KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			})
			if err != nil {
				return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: err}
			}
			return nil
		}
	}
	return c
}
