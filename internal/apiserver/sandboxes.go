package apiserver

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/sandbox"
)

type sandboxes struct{ s *Server }

var _ hutchv1connect.SandboxServiceHandler = (*sandboxes)(nil)

func (h *sandboxes) Create(ctx context.Context, req *connect.Request[hutchv1.CreateRequest]) (*connect.Response[hutchv1.CreateResponse], error) {
	rec, _, created, err := h.s.sb.Ensure(ctx, req.Msg.Name, sandbox.CreateOptions{Image: req.Msg.Image, InstanceType: req.Msg.InstanceType})
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.CreateResponse{Sandbox: toProto(rec), Created: created}), nil
}

func (h *sandboxes) Get(_ context.Context, req *connect.Request[hutchv1.GetRequest]) (*connect.Response[hutchv1.GetResponse], error) {
	rec, err := h.s.sb.Get(req.Msg.Name)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.GetResponse{Sandbox: toProto(rec)}), nil
}

func (h *sandboxes) List(context.Context, *connect.Request[hutchv1.ListRequest]) (*connect.Response[hutchv1.ListResponse], error) {
	recs := h.s.sb.List()
	out := &hutchv1.ListResponse{Sandboxes: make([]*hutchv1.Sandbox, 0, len(recs))}
	for _, r := range recs {
		out.Sandboxes = append(out.Sandboxes, toProto(r))
	}
	return connect.NewResponse(out), nil
}

func (h *sandboxes) Delete(ctx context.Context, req *connect.Request[hutchv1.DeleteRequest]) (*connect.Response[hutchv1.DeleteResponse], error) {
	if err := h.s.sb.Delete(ctx, req.Msg.Name); err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.DeleteResponse{}), nil
}

func (h *sandboxes) ExposePort(ctx context.Context, req *connect.Request[hutchv1.ExposePortRequest]) (*connect.Response[hutchv1.ExposedPort], error) {
	port := int(req.Msg.Port)
	tok, err := h.s.sb.Expose(ctx, req.Msg.Name, port)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.ExposedPort{Port: int32(port), Url: h.s.previewURL(req.Msg.Name, port, tok)}), nil
}

func (h *sandboxes) UnexposePort(ctx context.Context, req *connect.Request[hutchv1.UnexposePortRequest]) (*connect.Response[hutchv1.UnexposePortResponse], error) {
	if err := h.s.sb.Unexpose(ctx, req.Msg.Name, int(req.Msg.Port)); err != nil {
		return nil, err
	}
	return connect.NewResponse(&hutchv1.UnexposePortResponse{}), nil
}

func (h *sandboxes) ListExposedPorts(_ context.Context, req *connect.Request[hutchv1.ListExposedPortsRequest]) (*connect.Response[hutchv1.ListExposedPortsResponse], error) {
	ports, tokens, err := h.s.sb.Exposed(req.Msg.Name)
	if err != nil {
		return nil, err
	}
	out := &hutchv1.ListExposedPortsResponse{}
	for _, p := range ports {
		out.Ports = append(out.Ports, &hutchv1.ExposedPort{Port: int32(p), Url: h.s.previewURL(req.Msg.Name, p, tokens[p])})
	}
	return connect.NewResponse(out), nil
}
