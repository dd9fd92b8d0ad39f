package egress

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// CA is the daemon's certificate authority for intercepted HTTPS. It is
// made on first start and kept in its directory (ca.crt, ca.key); the
// bundle sandboxes trust (ca-bundle.crt: the host's roots plus this CA) is
// rewritten in place on rotation, so running sandboxes see the new one.
type CA struct {
	dir string

	mu    sync.Mutex
	cert  *x509.Certificate
	key   *ecdsa.PrivateKey
	pem   []byte
	leaf  *ecdsa.PrivateKey // one key for every host certificate
	cache map[string]*tls.Certificate
}

// systemRoots are where Debian, Fedora and Alpine keep their root bundles.
var systemRoots = []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"}

// OpenCA loads the CA in dir or makes one.
func OpenCA(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &CA{dir: dir}
	certPEM, err1 := os.ReadFile(filepath.Join(dir, "ca.crt"))
	keyPEM, err2 := os.ReadFile(filepath.Join(dir, "ca.key"))
	if err1 == nil && err2 == nil {
		if err := c.load(certPEM, keyPEM); err != nil {
			return nil, fmt.Errorf("egress CA in %s: %w", dir, err)
		}
		// The host's roots may have changed since: the bundle is remade.
		if err := c.writeBundle(); err != nil {
			return nil, err
		}
		return c, nil
	}
	if err := c.Rotate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CA) load(certPEM, keyPEM []byte) error {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return err
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return errors.New("CA key is not ECDSA")
	}
	leaf, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.cert, c.key, c.pem, c.leaf, c.cache = cert, key, certPEM, leaf, make(map[string]*tls.Certificate)
	c.mu.Unlock()
	return nil
}

// Rotate replaces the CA with a new one. Connections already intercepted
// keep their certificates; new ones get certificates of the new CA.
func (c *CA) Rotate() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "hutch egress CA " + time.Now().UTC().Format("2006-01-02 15:04"), Organization: []string{"hutch"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	if err := writeFile(filepath.Join(c.dir, "ca.key"), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(c.dir, "ca.crt"), certPEM, 0o644); err != nil {
		return err
	}
	if err := c.load(certPEM, keyPEM); err != nil {
		return err
	}
	return c.writeBundle()
}

// writeFile replaces path's content in place (not by rename), so a bind
// mount of it sees the new content.
func writeFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// PEM is the CA certificate.
func (c *CA) PEM() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.pem)
}

// BundlePath is the trust bundle sandboxes get: the host's roots and the CA.
func (c *CA) BundlePath() string { return filepath.Join(c.dir, "ca-bundle.crt") }

func (c *CA) writeBundle() error {
	var b bytes.Buffer
	for _, p := range systemRoots {
		if data, err := os.ReadFile(p); err == nil {
			b.Write(data)
			if !bytes.HasSuffix(data, []byte("\n")) {
				b.WriteByte('\n')
			}
			break
		}
	}
	b.Write(c.PEM())
	return writeFile(c.BundlePath(), b.Bytes(), 0o644)
}

// certFor returns a certificate for host (a name or an address) signed by
// the CA, made once and cached.
func (c *CA) certFor(host string) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if crt, ok := c.cache[host]; ok {
		return crt, nil
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(0, 0, 30),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if a, err := netip.ParseAddr(host); err == nil {
		tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &c.leaf.PublicKey, c.key)
	if err != nil {
		return nil, err
	}
	crt := &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: c.leaf}
	if len(c.cache) > 4096 {
		c.cache = make(map[string]*tls.Certificate)
	}
	c.cache[host] = crt
	return crt, nil
}

// TrustEnv points the usual TLS stacks (OpenSSL, curl, git, Python
// requests, pip, Node) at the bundle at path.
func TrustEnv(path string) []string {
	var out []string
	for _, k := range []string{"SSL_CERT_FILE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "REQUESTS_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS"} {
		out = append(out, k+"="+path)
	}
	return out
}
