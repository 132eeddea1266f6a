// Package pki writes throwaway certificates for end-to-end tests of
// migration over mutual TLS: one CA with a server and a client
// certificate, and an independent "rogue" CA with a certificate of its own
// that a correctly configured peer must refuse.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths Generate wrote, all PEM.
type Files struct {
	CA         string // ca.pem: the CA both good ends trust
	ServerCert string // server.pem
	ServerKey  string // server-key.pem
	ClientCert string // client.pem
	ClientKey  string // client-key.pem
	RogueCA    string // rogue-ca.pem: an unrelated CA
	RogueCert  string // rogue.pem: signed by the rogue CA, same hosts
	RogueKey   string // rogue-key.pem
}

// Validity is how long the certificates are valid, from an hour before
// Generate (so a host clock a little behind still accepts them).
const Validity = 24 * time.Hour

// Generate writes the files into dir (which must exist). Every leaf
// carries hosts as IP or DNS SANs and may serve as either end (both
// server and client auth), so tests can swap roles freely. Keys are ECDSA
// P-256, written mode 0600.
func Generate(dir string, hosts []string) (Files, error) {
	if len(hosts) == 0 {
		return Files{}, errors.New("pki: no hosts to name in the certificates")
	}
	f := Files{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server-key.pem"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client-key.pem"),
		RogueCA:    filepath.Join(dir, "rogue-ca.pem"),
		RogueCert:  filepath.Join(dir, "rogue.pem"),
		RogueKey:   filepath.Join(dir, "rogue-key.pem"),
	}
	notBefore := time.Now().Add(-time.Hour)
	ca, err := newCA("tern test CA", f.CA, notBefore)
	if err != nil {
		return Files{}, err
	}
	rogue, err := newCA("tern rogue CA", f.RogueCA, notBefore)
	if err != nil {
		return Files{}, err
	}
	for _, leaf := range []struct {
		ca        *authority
		name      string
		cert, key string
	}{
		{ca, "tern test server", f.ServerCert, f.ServerKey},
		{ca, "tern test client", f.ClientCert, f.ClientKey},
		{rogue, "tern rogue", f.RogueCert, f.RogueKey},
	} {
		if err := leaf.ca.issue(leaf.name, hosts, notBefore, leaf.cert, leaf.key); err != nil {
			return Files{}, err
		}
	}
	return f, nil
}

type authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newCA(name, certFile string, notBefore time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: %s: %w", name, err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &authority{cert: cert, key: key}, nil
}

func (a *authority) issue(name string, hosts []string, notBefore time.Time, certFile, keyFile string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	serial, err := serialNumber()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(Validity),
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", name, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %s: %w", name, err)
	}
	if err := writePEM(certFile, "CERTIFICATE", der, 0o644); err != nil {
		return err
	}
	return writePEM(keyFile, "PRIVATE KEY", keyDER, 0o600)
}

// serialNumber is random, as RFC 5280 asks of a CA's serials, so two
// runs' certificates never share one.
func serialNumber() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
