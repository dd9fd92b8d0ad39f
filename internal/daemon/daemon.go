// Package daemon is the composition root of `hutch serve`: it wires the
// image store, runtime, metadata store, sandbox manager and API server.
package daemon

import (
	"context"
	"crypto/x509"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hutch-sh/hutch/internal/apiserver"
	"github.com/hutch-sh/hutch/internal/backup"
	"github.com/hutch-sh/hutch/internal/blob"
	"github.com/hutch-sh/hutch/internal/egress"
	"github.com/hutch-sh/hutch/internal/errdefs"
	"github.com/hutch-sh/hutch/internal/image"
	"github.com/hutch-sh/hutch/internal/manager"
	"github.com/hutch-sh/hutch/internal/mcp"
	"github.com/hutch-sh/hutch/internal/network"
	"github.com/hutch-sh/hutch/internal/runtime"
	"github.com/hutch-sh/hutch/internal/sandbox"
	"github.com/hutch-sh/hutch/internal/snapshot"
	"github.com/hutch-sh/hutch/internal/store"
)

// Config is the daemon's configuration.
type Config struct {
	Listen      string   // host:port
	DataDir     string   // sandboxes and metadata
	CacheDir    string   // images and layers, shared by daemons on this machine
	APIKeys     []string // required on non-loopback addresses
	AgentBinary string   // default: hutch-agent next to this executable
	WarmPool    int      // sandboxes of the default image kept ready to hand out
	// AllowedHosts are Host names the API answers besides localhost and
	// the daemon's own addresses ("*": every one, with APIKeys only).
	AllowedHosts []string
	// Subnet is where sandbox addresses come from; zero keeps the one the
	// data dir used before or picks a free /18 of 10.0.0.0/8.
	Subnet netip.Prefix
	// PreviewDomain is the domain of preview URLs ({port}-{name}-{token}.DOMAIN);
	// "localhost" by default, which browsers resolve to this machine.
	PreviewDomain string
	// UpstreamCA is a PEM file of extra roots the egress proxy trusts for
	// the servers behind intercepted HTTPS (a private PKI); the host's
	// roots are always trusted.
	UpstreamCA string
	// Blobs, when set, is a blob store location (a directory, or
	// s3://HOST:PORT/BUCKET[/PREFIX]) that snapshots are pushed to and
	// pulled from, so that any node sharing it can fork them.
	Blobs string
	// Progress receives image build progress; Ready is called with the
	// address once the daemon accepts work.
	Progress io.Writer
	Ready    func(addr string)
}

// Run serves until ctx ends. Sandboxes keep running when it returns; the
// next daemon on the same data dir adopts them.
func Run(ctx context.Context, log *slog.Logger, cfg Config) error {
	api := apiserver.Config{Keys: cfg.APIKeys, AllowedHosts: cfg.AllowedHosts, PreviewDomain: cfg.PreviewDomain}
	if err := api.Check(); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	defer ln.Close()
	if !isLoopback(ln.Addr()) && len(cfg.APIKeys) == 0 {
		return fmt.Errorf("listening on %s, which is not loopback, needs API keys (--api-key or HUTCH_API_KEYS): %w", ln.Addr(), errdefs.ErrFailedPrecondition)
	}
	// Sandbox inits outlive the runc process that started them; as a
	// subreaper the daemon inherits and reaps them instead of leaving
	// zombies to a host init that may never reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	agent, err := agentBinary(cfg.AgentBinary, log)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	images, err := image.Open(cfg.CacheDir, log)
	if err != nil {
		return err
	}
	if _, err := images.EnsureDefault(ctx, cfg.Progress); err != nil {
		return fmt.Errorf("default image: %w", err)
	}
	tag := sandbox.DaemonTag(cfg.DataDir)
	rt, err := runtime.NewRunc(filepath.Join(cfg.DataDir, "runc"), runtime.CgroupParent(tag), log)
	if err != nil {
		return err
	}
	defer rt.Close()
	db, err := store.Open(filepath.Join(cfg.DataDir, "hutch.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	nw, err := network.Open(log, network.Config{
		Tag:       tag,
		StateFile: filepath.Join(cfg.DataDir, "network.json"),
		Subnet:    cfg.Subnet,
		Egress:    true,
	})
	if err != nil {
		return fmt.Errorf("sandbox network: %w", err)
	}
	defer func() {
		if err := nw.Close(); err != nil {
			log.Warn("close sandbox network", "err", err)
		}
	}()
	egressDir := filepath.Join(cfg.DataDir, "egress")
	ca, err := egress.OpenCA(egressDir)
	if err != nil {
		return err
	}
	secrets, err := egress.OpenSecrets(egressDir)
	if err != nil {
		return err
	}
	snaps, err := snapshot.Open(filepath.Join(cfg.DataDir, "snapshots"), log)
	if err != nil {
		return err
	}
	mcfg := manager.Config{DataDir: cfg.DataDir, AgentBinary: agent, PoolSize: cfg.WarmPool, Network: nw, CABundle: ca.BundlePath(), Snapshots: snaps}
	// Backups go to the shared blob store when there is one, else to a
	// directory of the data dir.
	var bs blob.Store
	if cfg.Blobs != "" {
		if bs, err = blob.Open(ctx, cfg.Blobs); err != nil {
			return fmt.Errorf("blob store: %w", err)
		}
		mcfg.Remote = snapshot.Remote{Local: snaps, Blobs: bs}
	} else if bs, err = blob.OpenDir(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		return err
	}
	m, err := manager.New(ctx, log, mcfg, rt, imageResolver{images}, db)
	if err != nil {
		return err
	}
	defer m.Close()
	proxy, err := startEgress(log, cfg, nw, m, ca, secrets)
	if err != nil {
		return err
	}
	defer proxy.Close()

	_, api.PreviewPort, _ = net.SplitHostPort(ln.Addr().String())
	if api.LocalAddrs, err = ownAddrs(ln.Addr()); err != nil {
		return err
	}
	api.Egress = &egress.Service{Secrets: secrets, CA: ca, Proxy: proxy, Policies: m}
	api.Backups = backup.New(bs)
	api.Images = images
	api.MCP = mcp.Handler(selfURL(ln.Addr()), log)
	srv := &http.Server{
		Handler:           apiserver.New(m, api, log),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		Protocols:         new(http.Protocols),
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("serving", "addr", ln.Addr().String(), "data", cfg.DataDir, "cache", cfg.CacheDir)
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	return nil
}

// startEgress runs the egress proxy on the sandboxes' gateway and sends
// their TCP connections to it.
func startEgress(log *slog.Logger, cfg Config, nw *network.Network, m *manager.Manager, ca *egress.CA, secrets *egress.Secrets) (*egress.Proxy, error) {
	var roots *x509.CertPool
	if cfg.UpstreamCA != "" {
		pem, err := os.ReadFile(cfg.UpstreamCA)
		if err != nil {
			return nil, fmt.Errorf("upstream CA: %w", err)
		}
		if roots, err = x509.SystemCertPool(); err != nil {
			roots = x509.NewCertPool()
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("upstream CA %s: no PEM certificate in it: %w", cfg.UpstreamCA, errdefs.ErrInvalidArgument)
		}
	}
	proxy, err := egress.Start(egress.Config{Listen: nw.Gateway(), Sandboxes: m, Secrets: secrets, CA: ca,
		Subnet: nw.Subnet(), UpstreamRoots: roots, Log: log})
	if err != nil {
		return nil, err
	}
	if err := nw.SetEgressPort(proxy.Port()); err != nil {
		proxy.Close()
		return nil, fmt.Errorf("redirect sandbox traffic to the egress proxy: %w", err)
	}
	nw.SetDNSFilter(proxy.AllowLookup)
	log.Info("egress proxy ready", "addr", nw.Gateway(), "port", proxy.Port())
	return proxy, nil
}

// ownAddrs lists the addresses the API is reached at: the listener's, or
// every interface's (read once, here) for a wildcard listener. The API
// answers them as Host: DNS rebinding always uses a name.
func ownAddrs(a net.Addr) ([]netip.Addr, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil, nil
	}
	if ip, ok := netip.AddrFromSlice(ta.IP); ok && !ip.IsUnspecified() {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ifas, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list the host's addresses: %w", err)
	}
	var out []netip.Addr
	for _, ifa := range ifas {
		if n, ok := ifa.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// agentBinary finds hutch-agent and warns when it is not static: a
// dynamically linked agent runs only in images with a matching libc.
func agentBinary(path string, log *slog.Logger) (string, error) {
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		path = filepath.Join(filepath.Dir(exe), "hutch-agent")
	}
	path, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("agent binary %s (build it with `make build`): %w: %w", path, err, errdefs.ErrFailedPrecondition)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			log.Warn("hutch-agent is dynamically linked; build it with CGO_ENABLED=0 to run images without glibc", "path", path)
			break
		}
	}
	return path, nil
}

// The lifecycle's interfaces, as this daemon implements them.
var (
	_ sandbox.Network = (*network.Network)(nil)
	_ sandbox.Images  = imageResolver{}
)

// imageResolver adapts the image store to the manager.
type imageResolver struct{ s *image.Store }

func (r imageResolver) Resolve(_ context.Context, name string) (sandbox.Rootfs, error) {
	if name == "" {
		name = "default"
	}
	img, err := r.s.Get(name)
	if err != nil {
		if errors.Is(err, errdefs.ErrNotFound) {
			return sandbox.Rootfs{}, fmt.Errorf("image %q: not in the image store (hutch image ls): %w", name, errdefs.ErrNotFound)
		}
		return sandbox.Rootfs{}, err
	}
	return sandbox.Rootfs{Image: name, Lowers: r.s.LowerDirs(img), Env: img.Env}, nil
}
