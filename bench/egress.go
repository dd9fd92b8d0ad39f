package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/vishvananda/netns"
)

// egressResult compares GETs to one HTTPS server outside: from the host
// straight to it, and from a sandbox's network namespace through the egress
// proxy, tunnelled (no rule for the host) and intercepted (a rule injects a
// header, so the daemon terminates TLS with its CA).
type egressResult struct {
	Direct, Tunnel, Intercept          latency
	DirectRPS, TunnelRPS, InterceptRPS float64
}

// egressHost stands for a server on the internet: a namespace with two
// addresses, .2 (tunnelled) and .3 (intercepted), serving HTTPS on 8443.
type egressHost struct {
	ns, veth    string
	tunnelIP    string
	interceptIP string
	caPEM       []byte
	srv         *http.Server
}

func newEgressHost() (h *egressHost, err error) {
	var r [2]byte
	_, _ = rand.Read(r[:])
	tag := hex.EncodeToString(r[:])
	h = &egressHost{ns: "hutch-bench-" + tag, veth: "hxb" + tag}
	base := fmt.Sprintf("198.18.%d.%d", 200+r[0]%50, r[1]&0xf8)
	ip := net.ParseIP(base).To4()
	at := func(n byte) string { return net.IPv4(ip[0], ip[1], ip[2], ip[3]+n).String() }
	h.tunnelIP, h.interceptIP = at(2), at(3)
	defer func() {
		if err != nil {
			h.close()
		}
	}()
	for _, args := range [][]string{
		{"ip", "netns", "add", h.ns},
		{"ip", "link", "add", h.veth, "type", "veth", "peer", "name", "eth0", "netns", h.ns},
		{"ip", "addr", "add", at(1) + "/29", "dev", h.veth},
		{"ip", "link", "set", h.veth, "up"},
		{"ip", "-n", h.ns, "addr", "add", at(2) + "/29", "dev", "eth0"},
		{"ip", "-n", h.ns, "addr", "add", at(3) + "/29", "dev", "eth0"},
		{"ip", "-n", h.ns, "link", "set", "eth0", "up"},
		{"ip", "-n", h.ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return h, fmt.Errorf("%v: %v: %s", args, err, out)
		}
	}
	cert, caPEM, err := benchCert(h.tunnelIP, h.interceptIP)
	if err != nil {
		return h, err
	}
	h.caPEM = caPEM
	ln, err := listenIn("/run/netns/"+h.ns, "0.0.0.0:8443")
	if err != nil {
		return h, err
	}
	body := make([]byte, 1024)
	h.srv = &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}},
	}
	go func() { _ = h.srv.ServeTLS(ln, "", "") }()
	return h, nil
}

func (h *egressHost) close() {
	if h.srv != nil {
		h.srv.Close()
	}
	_ = exec.Command("ip", "link", "del", h.veth).Run()
	_ = exec.Command("ip", "netns", "del", h.ns).Run()
}

// benchCert makes a CA and a certificate for ips signed by it.
func benchCert(ips ...string) (tls.Certificate, []byte, error) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: caT.NotBefore, NotAfter: caT.NotAfter,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, ip := range ips {
		leafT.IPAddresses = append(leafT.IPAddresses, net.ParseIP(ip))
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, caCert, &leafKey.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	return tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: leafKey},
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), nil
}

// inNetns runs fn on a thread in the namespace at path; the thread is never
// unlocked, so the runtime retires it. Sockets made there stay there.
func inNetns(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromPath(path)
		if err == nil {
			err = netns.Set(h)
			h.Close()
		}
		if err == nil {
			err = fn()
		}
		errc <- err
	}()
	return <-errc
}

func listenIn(path, addr string) (ln net.Listener, err error) {
	err = inNetns(path, func() error { ln, err = net.Listen("tcp4", addr); return err })
	return ln, err
}

// benchEgress runs a daemon of its own (it must trust the outside host's
// CA), makes a sandbox whose policy intercepts one of the host's addresses,
// and times GETs with keep-alive connections from the sandbox's network
// namespace, and the same client from the host straight to the server.
func benchEgress(ctx context.Context, cfg config, tmp string) (r egressResult, err error) {
	h, err := newEgressHost()
	if err != nil {
		return r, err
	}
	defer h.close()
	caFile := filepath.Join(tmp, "egress-upstream-ca.pem")
	if err := os.WriteFile(caFile, h.caPEM, 0o644); err != nil {
		return r, err
	}
	data := filepath.Join(tmp, "data-egress")
	d, err := startDaemon(ctx, cfg.binDir, data, cfg.cacheDir, filepath.Join(tmp, "daemon-egress.log"), "--warm", "0", "--upstream-ca", caFile)
	if err != nil {
		return r, err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		err = errors.Join(err, d.removeSandboxes(cctx))
		d.stop()
	}()
	_ = d.client.SetSecret(ctx, "BENCH_TOKEN", "bench-secret")
	pol := fmt.Sprintf(`{"internet": false, "allow": [%q, %q], "rules": [{"host": %q, "headers": {"Authorization": "Bearer {{secret:BENCH_TOKEN}}"}}]}`,
		h.tunnelIP, h.interceptIP, h.interceptIP)
	if _, err := d.client.SetPolicy(ctx, "egress", pol, true); err != nil {
		return r, err
	}
	sb, err := d.client.Get(ctx, "egress")
	if err != nil {
		return r, err
	}
	daemonCA, err := d.client.EgressCA(ctx, false)
	if err != nil {
		return r, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(h.caPEM)
	roots.AppendCertsFromPEM([]byte(daemonCA))
	nsPath := filepath.Join(data, "sandboxes", sb.Id, "netns")
	client := func(inSandbox bool) *http.Client {
		dial := (&net.Dialer{Timeout: 5 * time.Second}).DialContext
		if inSandbox {
			hostDial := dial
			dial = func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = inNetns(nsPath, func() error { c, err = hostDial(ctx, network, addr); return err })
				return c, err
			}
		}
		return &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: clients,
			TLSClientConfig: &tls.Config{RootCAs: roots}}}
	}
	url := func(ip string) string { return "https://" + ip + ":8443/" }
	direct := getter(ctx, client(false), url(h.tunnelIP), "")
	tunnel := getter(ctx, client(true), url(h.tunnelIP), "")
	intercept := getter(ctx, client(true), url(h.interceptIP), "")
	for _, m := range []struct {
		get func() error
		l   *latency
		rps *float64
	}{{direct, &r.Direct, &r.DirectRPS}, {tunnel, &r.Tunnel, &r.TunnelRPS}, {intercept, &r.Intercept, &r.InterceptRPS}} {
		if *m.l, err = timeGets(m.get); err != nil {
			return r, err
		}
		if *m.rps, err = rate(m.get); err != nil {
			return r, err
		}
	}
	ents, err := d.client.EgressLog(ctx, "egress", 1)
	if err != nil || len(ents) == 0 || ents[0].Proto != "https" {
		return r, fmt.Errorf("egress log does not show the intercepted requests (%v)", err)
	}
	return r, nil
}

func (r *results) writeEgressRows(w io.Writer) {
	e := r.Egress
	row(w, "egress HTTPS GET, direct", lat(e.Direct), fmt.Sprintf("%5.0f req/s, %d clients, from the host", e.DirectRPS, clients))
	row(w, "  through proxy, tunnelled", lat(e.Tunnel), fmt.Sprintf("%5.0f req/s; +%.2f ms over direct", e.TunnelRPS, float64(e.Tunnel.Median-e.Direct.Median)/1e6))
	row(w, "  through proxy, intercepted", lat(e.Intercept), fmt.Sprintf("%5.0f req/s; +%.2f ms over direct (header injected)", e.InterceptRPS, float64(e.Intercept.Median-e.Direct.Median)/1e6))
}
