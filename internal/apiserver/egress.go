package apiserver

import (
	"context"
	"encoding/json"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/egress"
)

// Egress is what the API needs for egress control.
type Egress interface {
	SetSecret(name, value string, scope []string) error
	DeleteSecret(name string) error
	ListSecrets() []egress.SecretInfo
	SetPolicy(ctx context.Context, sandbox string, p egress.Policy, create bool) error
	Policy(sandbox string) (egress.Policy, error)
	Log(sandbox string, since time.Time, n int) []egress.Entry
	CAPEM(rotate bool) ([]byte, error)
}

var _ Egress = (*egress.Service)(nil)

type egressService struct{ s *Server }

var _ hutchv1connect.EgressServiceHandler = (*egressService)(nil)

func (h *egressService) SetSecret(_ context.Context, req *connect.Request[hutchv1.SetSecretRequest]) (*connect.Response[hutchv1.SetSecretResponse], error) {
	if err := h.s.cfg.Egress.SetSecret(req.Msg.Name, req.Msg.Value, req.Msg.Scope); err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.SetSecretResponse{}), nil
}

func (h *egressService) DeleteSecret(_ context.Context, req *connect.Request[hutchv1.DeleteSecretRequest]) (*connect.Response[hutchv1.DeleteSecretResponse], error) {
	if err := h.s.cfg.Egress.DeleteSecret(req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.DeleteSecretResponse{}), nil
}

func (h *egressService) ListSecrets(context.Context, *connect.Request[hutchv1.ListSecretsRequest]) (*connect.Response[hutchv1.ListSecretsResponse], error) {
	secrets := h.s.cfg.Egress.ListSecrets()
	out := &hutchv1.ListSecretsResponse{Names: make([]string, 0, len(secrets)), Secrets: make([]*hutchv1.SecretInfo, 0, len(secrets))}
	for _, sec := range secrets {
		out.Names = append(out.Names, sec.Name)
		out.Secrets = append(out.Secrets, &hutchv1.SecretInfo{Name: sec.Name, Scope: sec.Scope.Globs()})
	}
	return connect.NewResponse(out), nil
}

func (h *egressService) SetPolicy(ctx context.Context, req *connect.Request[hutchv1.SetPolicyRequest]) (*connect.Response[hutchv1.PolicyResponse], error) {
	p, err := egress.ParsePolicy([]byte(req.Msg.Policy))
	if err != nil {
		return nil, err
	}
	if err := h.s.cfg.Egress.SetPolicy(ctx, req.Msg.Sandbox, p, req.Msg.Create); err != nil {
		return nil, err
	}
	return policyResponse(p)
}

func (h *egressService) GetPolicy(_ context.Context, req *connect.Request[hutchv1.GetPolicyRequest]) (*connect.Response[hutchv1.PolicyResponse], error) {
	p, err := h.s.cfg.Egress.Policy(req.Msg.Sandbox)
	if err != nil {
		return nil, err
	}
	return policyResponse(p)
}

func policyResponse(p egress.Policy) (*connect.Response[hutchv1.PolicyResponse], error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.PolicyResponse{Policy: string(b)}), nil
}

func (h *egressService) EgressLog(_ context.Context, req *connect.Request[hutchv1.EgressLogRequest]) (*connect.Response[hutchv1.EgressLogResponse], error) {
	rec, err := h.s.sb.Get(req.Msg.Sandbox)
	if err != nil {
		return nil, err
	}
	ents := h.s.cfg.Egress.Log(req.Msg.Sandbox, rec.CreatedAt, int(max(req.Msg.Limit, 0)))
	out := &hutchv1.EgressLogResponse{Entries: make([]*hutchv1.EgressEntry, 0, len(ents))}
	for _, e := range ents {
		out.Entries = append(out.Entries, &hutchv1.EgressEntry{
			Time: timestamppb.New(e.Time), Proto: e.Proto, Host: e.Host, Port: int32(e.Port), Addr: e.Addr,
			Method: e.Method, Path: e.Path, Status: int32(e.Status), Allowed: e.Allowed, Rule: e.Rule,
			BytesOut: e.BytesOut, BytesIn: e.BytesIn, Error: e.Error,
		})
	}
	return connect.NewResponse(out), nil
}

func (h *egressService) GetCA(_ context.Context, req *connect.Request[hutchv1.GetCARequest]) (*connect.Response[hutchv1.GetCAResponse], error) {
	pem, err := h.s.cfg.Egress.CAPEM(req.Msg.Rotate)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.GetCAResponse{CertificatePem: string(pem)}), nil
}
