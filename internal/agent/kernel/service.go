package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/registry"
	"github.com/hutch-sh/hutch/internal/errdefs"
)

const (
	// MaxCodeBytes bounds one cell.
	MaxCodeBytes = 1 << 20
	// maxContexts bounds the contexts of one sandbox (each may hold a
	// kernel of 50-100 MB).
	maxContexts = 32
	// interruptGrace is how long an interrupted cell may take to stop
	// before its kernel is killed (and the context's state lost).
	interruptGrace = 3 * time.Second
	// startTimeout bounds a kernel's start.
	startTimeout = 60 * time.Second
)

// Service implements CodeService in the agent.
type Service struct {
	log       *slog.Logger
	spawn     Spawner
	workdir   string
	dir       string        // kernels' private files, one directory each
	keepAlive time.Duration // quiet time before a RunCode stream sends a keep-alive
	contexts  *registry.Registry[*codeContext]
}

var _ hutchv1connect.CodeServiceHandler = (*Service)(nil)

// New returns a Service whose kernels start in workdir unless a context
// says otherwise, keep their files under dir, and send keep-alives on
// quiet streams every keepAlive.
func New(log *slog.Logger, sp Spawner, workdir, dir string, keepAlive time.Duration) *Service {
	return &Service{
		log: log, spawn: sp, workdir: workdir, dir: dir, keepAlive: keepAlive,
		contexts: registry.New("code context", registry.Options[*codeContext]{Max: maxContexts}),
	}
}

// codeContext is one context: its settings and, once used, its kernel.
type codeContext struct {
	id, lang, cwd string
	env           map[string]string
	created       time.Time
	isDefault     bool

	turn chan struct{} // held while a cell runs: cells run one at a time

	mu        sync.Mutex
	k         kernel        // nil until first use, and after close
	lost      bool          // its last kernel died: the next one starts afresh
	interrupt chan struct{} // closed by InterruptCode; set while a cell runs
	deleted   bool
}

func defaultID(lang string) string { return "default-" + lang }

func (s *Service) CreateCodeContext(_ context.Context, req *connect.Request[hutchv1.CreateCodeContextRequest]) (*connect.Response[hutchv1.CodeContext], error) {
	c, err := s.create(req.Msg.Id, req.Msg.Language, req.Msg.Cwd, req.Msg.Env, false)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	return connect.NewResponse(c.info()), nil
}

func (s *Service) create(id, language, cwd string, env map[string]string, isDefault bool) (*codeContext, error) {
	if id != "" {
		if err := registry.CheckID("code context", id); err != nil {
			return nil, err
		}
	}
	c, err := s.newContext(language, cwd, env, isDefault)
	if err != nil {
		return nil, err
	}
	return s.contexts.Add(id, c.named)
}

// getOrCreate returns context id, creating it in the workdir if there is none.
func (s *Service) getOrCreate(id, language string, isDefault bool) (*codeContext, error) {
	c, _, err := s.contexts.GetOrCreate(id, func(id string) (*codeContext, error) {
		c, err := s.newContext(language, "", nil, isDefault)
		if err != nil {
			return nil, err
		}
		return c.named(id)
	})
	return c, err
}

// newContext checks a context's settings and makes it, without an id.
func (s *Service) newContext(language, cwd string, env map[string]string, isDefault bool) (*codeContext, error) {
	lang, err := ParseLanguage(language)
	if err != nil {
		return nil, err
	}
	if cwd == "" {
		cwd = s.workdir
	} else if !filepath.IsAbs(cwd) {
		cwd = filepath.Join(s.workdir, cwd)
	}
	if fi, err := os.Stat(cwd); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("cwd %q: no such directory: %w", cwd, errdefs.ErrNotFound)
	}
	return &codeContext{lang: lang, cwd: cwd, env: env, created: time.Now(), isDefault: isDefault, turn: make(chan struct{}, 1)}, nil
}

// named gives c the id the registry chose.
func (c *codeContext) named(id string) (*codeContext, error) {
	c.id = id
	return c, nil
}

func (c *codeContext) info() *hutchv1.CodeContext {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci := &hutchv1.CodeContext{Id: c.id, Language: c.lang, Cwd: c.cwd, CreatedAt: timestamppb.New(c.created), Default: c.isDefault}
	if c.k != nil && !exited(c.k) {
		ci.Running = true
		ci.Pid = int32(c.k.child().Pid)
	}
	return ci
}

func (s *Service) ListCodeContexts(context.Context, *connect.Request[hutchv1.ListCodeContextsRequest]) (*connect.Response[hutchv1.ListCodeContextsResponse], error) {
	cs := registry.Sorted(s.contexts, func(c *codeContext) time.Time { return c.created })
	res := &hutchv1.ListCodeContextsResponse{Contexts: make([]*hutchv1.CodeContext, len(cs))}
	for i, c := range cs {
		res.Contexts[i] = c.info()
	}
	return connect.NewResponse(res), nil
}

func (s *Service) lookup(id string) (*codeContext, error) { return s.contexts.Get(id) }

func (s *Service) DeleteCodeContext(_ context.Context, req *connect.Request[hutchv1.DeleteCodeContextRequest]) (*connect.Response[hutchv1.DeleteCodeContextResponse], error) {
	c, err := s.contexts.Get(req.Msg.Id)
	if err != nil || !s.contexts.Remove(req.Msg.Id, c) {
		return nil, errdefs.ToConnect(fmt.Errorf("code context %q: %w", req.Msg.Id, errdefs.ErrNotFound))
	}
	c.shutdown()
	return connect.NewResponse(&hutchv1.DeleteCodeContextResponse{}), nil
}

// shutdown kills the context's kernel; a running cell ends as kernel_died.
func (c *codeContext) shutdown() {
	c.mu.Lock()
	k := c.k
	c.k, c.deleted = nil, true
	c.mu.Unlock()
	if k != nil {
		k.close()
	}
}

func (s *Service) InterruptCode(_ context.Context, req *connect.Request[hutchv1.InterruptCodeRequest]) (*connect.Response[hutchv1.InterruptCodeResponse], error) {
	c, err := s.lookup(req.Msg.Context)
	if err != nil {
		return nil, errdefs.ToConnect(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interrupt == nil {
		return connect.NewResponse(&hutchv1.InterruptCodeResponse{}), nil
	}
	select {
	case <-c.interrupt:
	default:
		close(c.interrupt)
	}
	return connect.NewResponse(&hutchv1.InterruptCodeResponse{Interrupted: true}), nil
}

// Close stops every kernel; later runs fail as unavailable.
func (s *Service) Close() {
	cs := s.contexts.Close()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(c.shutdown)
	}
	wg.Wait()
}

// resolve finds the context a RunCode request names, creating the
// language's default context, or the named one when asked to.
func (s *Service) resolve(r *hutchv1.RunCodeRequest) (*codeContext, error) {
	if r.Context == "" {
		lang, err := ParseLanguage(r.Language)
		if err != nil {
			return nil, fmt.Errorf("run code without a context: %w", err)
		}
		return s.getOrCreate(defaultID(lang), lang, true)
	}
	var c *codeContext
	var err error
	if r.Create && r.Language != "" {
		c, err = s.getOrCreate(r.Context, r.Language, false)
	} else {
		c, err = s.lookup(r.Context)
	}
	if err != nil {
		return nil, err
	}
	if r.Language != "" {
		lang, err := ParseLanguage(r.Language)
		if err != nil {
			return nil, err
		}
		if lang != c.lang {
			return nil, fmt.Errorf("code context %q runs %s, not %s: %w", c.id, c.lang, lang, errdefs.ErrInvalidArgument)
		}
	}
	return c, nil
}

// kernel returns the context's running kernel, starting one if it has none
// or its last one died. Only run calls it, holding the context's turn, so
// c.mu is not held while a kernel starts (listing stays quick).
func (s *Service) kernel(ctx context.Context, c *codeContext) (k kernel, started, lost bool, err error) {
	c.mu.Lock()
	if c.deleted {
		c.mu.Unlock()
		return nil, false, false, fmt.Errorf("code context %q was deleted: %w", c.id, errdefs.ErrNotFound)
	}
	if c.k != nil && !exited(c.k) {
		k = c.k
		c.mu.Unlock()
		return k, false, false, nil
	}
	dead := c.k
	if dead != nil {
		c.k, c.lost = nil, true
	}
	c.mu.Unlock()
	if dead != nil {
		dead.close()
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, false, false, fmt.Errorf("kernel dir: %w", err)
	}
	dir, err := os.MkdirTemp(s.dir, "k")
	if err != nil {
		return nil, false, false, fmt.Errorf("kernel dir: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), startTimeout)
	defer cancel()
	t0 := time.Now()
	if c.lang == Python {
		k, err = startPython(ctx, s.spawn, dir, c.cwd, c.env)
	} else {
		k, err = startNode(ctx, s.spawn, dir, c.lang, c.cwd, c.env)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, false, false, err
	}
	s.log.Debug("kernel started", "op", "kernel", "context", c.id, "language", c.lang, "pid", k.child().Pid, "took", time.Since(t0))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deleted {
		go k.close()
		return nil, false, false, fmt.Errorf("code context %q was deleted: %w", c.id, errdefs.ErrNotFound)
	}
	lost, c.k, c.lost = c.lost, k, false
	return k, true, lost, nil
}
