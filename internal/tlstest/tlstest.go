// Package tlstest makes a throwaway certificate authority for tests: a CA,
// a server certificate for 127.0.0.1 and localhost, and a client
// certificate, as PEM files in a test's temporary directory, and TLS
// configs built from them.
package tlstest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// PKI is the files of a throwaway CA and the certificates it signed.
type PKI struct {
	CA                    string // the CA's certificate
	ServerCert, ServerKey string // for 127.0.0.1 and localhost
	ClientCert, ClientKey string // for client authentication
	Other, OtherKey       string // a certificate the CA did not sign
	caCert                *x509.Certificate
}

// New makes a CA and its certificates in tb.TempDir(); they are valid for
// an hour.
func New(tb testing.TB) PKI {
	tb.Helper()
	dir := tb.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			tb.Fatal(err)
		}
		return path
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	now := time.Now()
	selfSigned := func(name string) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			tb.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			tb.Fatal(err)
		}
		return c, k, der
	}
	leaf := func(file, name string, serial int64, ca *x509.Certificate, caKey *ecdsa.PrivateKey) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			tb.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			tb.Fatal(err)
		}
		return write(file+".pem", "CERTIFICATE", der), write(file+"-key.pem", "EC PRIVATE KEY", kder)
	}
	caCert, caKey, caDER := selfSigned("cairn test CA")
	p := PKI{CA: write("ca.pem", "CERTIFICATE", caDER), caCert: caCert}
	p.ServerCert, p.ServerKey = leaf("server", "server", 2, caCert, caKey)
	p.ClientCert, p.ClientKey = leaf("client", "client", 3, caCert, caKey)
	otherCA, otherKey, _ := selfSigned("another CA")
	p.Other, p.OtherKey = leaf("other", "other", 4, otherCA, otherKey)
	return p
}

// Mutual returns a TLS config with certFile and keyFile as its
// certificate that trusts only the CA, as server (client certificates
// required) and as client.
func (p PKI) Mutual(tb testing.TB, certFile, keyFile string) *tls.Config {
	tb.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.caCert)
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
}
