package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	defaultWaitTimeout = 60 * time.Second
	// portPoll is how often a port condition is checked.
	portPoll = 50 * time.Millisecond
	// probeTimeout bounds one TCP connect or HTTP request of a port check.
	probeTimeout = 2 * time.Second
	// maxLine is how much of one line a log condition sees.
	maxLine = 64 << 10
	// tailLines is how many last lines of each stream a failed wait reports.
	tailLines = 5
)

var errWaitTimeout = errors.New("wait timed out")

// WaitProcess blocks until the condition holds, the process ends first, or
// the timeout passes.
func (s *Service) WaitProcess(ctx context.Context, req *connect.Request[hutchv1.WaitProcessRequest]) (*connect.Response[hutchv1.WaitProcessResponse], error) {
	res, err := s.wait(ctx, req.Msg)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(res), nil
}

func (s *Service) wait(ctx context.Context, r *hutchv1.WaitProcessRequest) (*hutchv1.WaitProcessResponse, error) {
	if r.TimeoutMs < 0 {
		return nil, fmt.Errorf("wait for process %q: negative timeout: %w", r.Id, errdefs.ErrInvalidArgument)
	}
	timeout := defaultWaitTimeout
	if r.TimeoutMs > 0 {
		timeout = time.Duration(r.TimeoutMs) * time.Millisecond
	}
	var (
		cond func(context.Context, *proc) (string, error)
		what string
	)
	switch c := r.Condition.(type) {
	case *hutchv1.WaitProcessRequest_Log:
		re, err := regexp.Compile(c.Log)
		if err != nil {
			return nil, fmt.Errorf("wait for process %q: log pattern: %w: %w", r.Id, err, errdefs.ErrInvalidArgument)
		}
		cond, what = func(ctx context.Context, p *proc) (string, error) { return waitLog(ctx, p, re) }, fmt.Sprintf("output matching %q", c.Log)
	case *hutchv1.WaitProcessRequest_Port:
		pr, err := newProber(c.Port)
		if err != nil {
			return nil, fmt.Errorf("wait for process %q: %w", r.Id, err)
		}
		cond, what = pr.wait, pr.String()
	case *hutchv1.WaitProcessRequest_Exit:
		if !c.Exit {
			return nil, fmt.Errorf("wait for process %q: exit condition must be true: %w", r.Id, errdefs.ErrInvalidArgument)
		}
		cond, what = waitExit, "its exit"
	default:
		return nil, fmt.Errorf("wait for process %q: set one of log, port or exit: %w", r.Id, errdefs.ErrInvalidArgument)
	}
	p, err := s.procs.Get(r.Id)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, errWaitTimeout)
	defer cancel()
	line, err := cond(ctx, p)
	switch {
	case errors.Is(err, errEndedFirst):
		return nil, fmt.Errorf("process %q %s before %s; %s: %w", p.id, describeEnd(p.info()), what, p.tail(), errdefs.ErrFailedPrecondition)
	case err != nil && errors.Is(context.Cause(ctx), errWaitTimeout):
		return nil, fmt.Errorf("process %q: %s did not happen within %s: %w", p.id, what, timeout, errdefs.ErrDeadlineExceeded)
	case err != nil:
		return nil, err
	}
	return &hutchv1.WaitProcessResponse{Line: line, Process: p.info()}, nil
}

var errEndedFirst = errors.New("process ended first")

func waitExit(ctx context.Context, p *proc) (string, error) {
	select {
	case <-p.done:
		return "", nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// describeEnd says how an ended process ended.
func describeEnd(pi *hutchv1.ProcessInfo) string {
	if pi.Signal != "" {
		return fmt.Sprintf("was killed by %s (exit code %d)", pi.Signal, pi.ExitCode)
	}
	return fmt.Sprintf("exited with code %d", pi.ExitCode)
}

// tail describes the last lines of each stream, for an error message.
func (p *proc) tail() string {
	p.mu.Lock()
	out, _, _ := p.stdout.Read(p.stdout.End()-4096, 4096)
	errb, _, _ := p.stderr.Read(p.stderr.End()-4096, 4096)
	p.mu.Unlock()
	last := func(b []byte) string {
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > tailLines {
			lines = lines[len(lines)-tailLines:]
		}
		return strings.Join(lines, "\n")
	}
	switch {
	case len(out) == 0 && len(errb) == 0:
		return "it printed nothing"
	case len(errb) == 0:
		return "last stdout:\n" + last(out)
	case len(out) == 0:
		return "last stderr:\n" + last(errb)
	}
	return "last stdout:\n" + last(out) + "\nlast stderr:\n" + last(errb)
}

// lineScan splits one stream into lines as it is read from its ring.
type lineScan struct {
	off     int64
	partial []byte
	skip    bool // drop up to the next newline: the start of this line was lost
}

// feed scans data read at an offset; it returns the first complete line
// that matches.
func (l *lineScan) feed(data []byte, at int64, truncated bool, re *regexp.Regexp) (string, bool) {
	if truncated {
		l.partial, l.skip = l.partial[:0], true
	}
	l.off = at + int64(len(data))
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		seg := data
		if i >= 0 {
			seg = data[:i]
		}
		if !l.skip {
			l.partial = append(l.partial, seg[:min(len(seg), maxLine-len(l.partial))]...)
		}
		if i < 0 {
			return "", false
		}
		data = data[i+1:]
		line := bytes.TrimSuffix(l.partial, []byte("\r"))
		skipped := l.skip
		l.partial, l.skip = l.partial[:0], false
		if !skipped && re.Match(line) {
			return string(line), true
		}
	}
	return "", false
}

// final checks the unterminated last line of an ended stream.
func (l *lineScan) final(re *regexp.Regexp) (string, bool) {
	line := bytes.TrimSuffix(l.partial, []byte("\r"))
	if l.skip || len(line) == 0 || !re.Match(line) {
		return "", false
	}
	return string(line), true
}

// waitLog scans stdout and stderr, from the oldest kept output on, for a
// line matching re.
func waitLog(ctx context.Context, p *proc, re *regexp.Regexp) (string, error) {
	var out, errs lineScan
	for {
		p.mu.Lock()
		ob, oAt, oTrunc := p.stdout.Read(out.off, logChunk)
		eb, eAt, eTrunc := p.stderr.Read(errs.off, logChunk)
		ended, changed := p.ended, p.changed
		p.mu.Unlock()
		if line, ok := out.feed(ob, oAt, oTrunc, re); ok {
			return line, nil
		}
		if line, ok := errs.feed(eb, eAt, eTrunc, re); ok {
			return line, nil
		}
		if len(ob) > 0 || len(eb) > 0 {
			continue
		}
		if ended {
			if line, ok := out.final(re); ok {
				return line, nil
			}
			if line, ok := errs.final(re); ok {
				return line, nil
			}
			return "", errEndedFirst
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

// prober checks whether something serves on a local port.
type prober struct {
	port     int
	http     bool
	url      string
	min, max int
	client   *http.Client
}

func newProber(c *hutchv1.PortCondition) (*prober, error) {
	if c.Port < 1 || c.Port > 65535 {
		return nil, fmt.Errorf("port %d: want 1-65535: %w", c.Port, errdefs.ErrInvalidArgument)
	}
	pr := &prober{port: int(c.Port)}
	switch c.Mode {
	case "", "tcp":
		return pr, nil
	case "http":
	default:
		return nil, fmt.Errorf("port mode %q: want tcp or http: %w", c.Mode, errdefs.ErrInvalidArgument)
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("http path %q: must start with /: %w", path, errdefs.ErrInvalidArgument)
	}
	pr.http, pr.min, pr.max = true, int(c.StatusMin), int(c.StatusMax)
	if pr.min == 0 {
		pr.min = 200
	}
	if pr.max == 0 {
		pr.max = 399
	}
	if pr.min > pr.max {
		return nil, fmt.Errorf("http status range %d-%d is empty: %w", pr.min, pr.max, errdefs.ErrInvalidArgument)
	}
	pr.url = "http://" + pr.addr() + path
	if _, err := http.NewRequest(http.MethodGet, pr.url, nil); err != nil {
		return nil, fmt.Errorf("http path %q: %w: %w", path, err, errdefs.ErrInvalidArgument)
	}
	pr.client = &http.Client{
		// Each probe stands alone: no proxy, no kept connections, and a
		// redirect is an answer in itself.
		Transport:     &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return pr, nil
}

func (pr *prober) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(pr.port)) }

func (pr *prober) String() string {
	if pr.http {
		return fmt.Sprintf("GET %s answering %d-%d", pr.url, pr.min, pr.max)
	}
	return fmt.Sprintf("port %d accepting connections", pr.port)
}

// ready makes one connection or request.
func (pr *prober) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	if !pr.http {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", pr.addr())
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.url, nil)
	if err != nil {
		return false
	}
	res, err := pr.client.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode >= pr.min && res.StatusCode <= pr.max
}

// wait polls until the port is ready; it fails as soon as the process ends
// with the port still not ready.
func (pr *prober) wait(ctx context.Context, p *proc) (string, error) {
	t := time.NewTicker(portPoll)
	defer t.Stop()
	for {
		ended := p.isEnded()
		if pr.ready(ctx) {
			return "", nil
		}
		if ended {
			return "", errEndedFirst
		}
		select {
		case <-t.C:
		case <-p.done:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}
