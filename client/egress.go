package client

import (
	"context"

	"connectrpc.com/connect"

	hutchv1 "github.com/hutch-sh/hutch/api/hutch/v1"
)

// SetSecret stores or rotates a secret in the daemon, for egress rules to
// inject ({{secret:NAME}}); no call ever returns its value. scope, globs
// over sandbox names ("agent-*"; "*" for every sandbox), limits which
// sandboxes' rules may use it; without one a rotation keeps the secret's
// scope, and a new secret is for every sandbox.
func (c *Client) SetSecret(ctx context.Context, name, value string, scope ...string) error {
	_, err := c.egress.SetSecret(ctx, connect.NewRequest(&hutchv1.SetSecretRequest{Name: name, Value: value, Scope: scope}))
	return wrap(err)
}

// DeleteSecret removes a secret.
func (c *Client) DeleteSecret(ctx context.Context, name string) error {
	_, err := c.egress.DeleteSecret(ctx, connect.NewRequest(&hutchv1.DeleteSecretRequest{Name: name}))
	return wrap(err)
}

// Secrets lists the secrets' names and scopes. A daemon older than scopes
// tells names only: their scope is left empty.
func (c *Client) Secrets(ctx context.Context) ([]*hutchv1.SecretInfo, error) {
	resp, err := c.egress.ListSecrets(ctx, connect.NewRequest(&hutchv1.ListSecretsRequest{}))
	if err != nil {
		return nil, wrap(err)
	}
	if len(resp.Msg.Secrets) == 0 {
		for _, n := range resp.Msg.Names {
			resp.Msg.Secrets = append(resp.Msg.Secrets, &hutchv1.SecretInfo{Name: n})
		}
	}
	return resp.Msg.Secrets, nil
}

// SetPolicy replaces a sandbox's egress policy (JSON) and returns it as the
// daemon stored it. With create, a missing sandbox is created with it.
func (c *Client) SetPolicy(ctx context.Context, name, policyJSON string, create bool) (string, error) {
	resp, err := c.egress.SetPolicy(ctx, connect.NewRequest(&hutchv1.SetPolicyRequest{Sandbox: name, Policy: policyJSON, Create: create}))
	if err != nil {
		return "", wrap(err)
	}
	return resp.Msg.Policy, nil
}

// Policy returns a sandbox's egress policy as JSON.
func (c *Client) Policy(ctx context.Context, name string) (string, error) {
	resp, err := c.egress.GetPolicy(ctx, connect.NewRequest(&hutchv1.GetPolicyRequest{Sandbox: name}))
	if err != nil {
		return "", wrap(err)
	}
	return resp.Msg.Policy, nil
}

// EgressLog returns up to limit of a sandbox's latest egress log entries
// (0: all that are kept), oldest first.
func (c *Client) EgressLog(ctx context.Context, name string, limit int) ([]*hutchv1.EgressEntry, error) {
	resp, err := c.egress.EgressLog(ctx, connect.NewRequest(&hutchv1.EgressLogRequest{Sandbox: name, Limit: int32(limit)}))
	if err != nil {
		return nil, wrap(err)
	}
	return resp.Msg.Entries, nil
}

// EgressCA returns the PEM certificate sandboxes trust for intercepted
// HTTPS; with rotate, the daemon replaces its CA first.
func (c *Client) EgressCA(ctx context.Context, rotate bool) (string, error) {
	resp, err := c.egress.GetCA(ctx, connect.NewRequest(&hutchv1.GetCARequest{Rotate: rotate}))
	if err != nil {
		return "", wrap(err)
	}
	return resp.Msg.CertificatePem, nil
}
