// Package agentapi is the daemon↔agent protocol and nothing else: where the
// agent lives and listens inside a sandbox, and the HTTP paths it serves
// beside its Connect services. Both sides import it (and its subpackages
// envelope, termwire and tunnel); it imports neither.
package agentapi

// In-sandbox paths of what the daemon mounts into every sandbox.
const (
	// AgentPath is the agent binary, bind-mounted read-only; it runs as PID 1.
	AgentPath = "/.hutch/agent"
	// RunDir is a host directory bind-mounted into the sandbox; it holds
	// the agent's socket, so the daemon reaches the agent through the
	// file system and not through the sandbox's network.
	RunDir = "/.hutch/run"
	// SocketName is the agent's unix socket in RunDir.
	SocketName = "agent.sock"
)

// Plain-HTTP paths the agent serves beside its Connect services.
const (
	// FilesPath serves file contents: GET reads, PUT writes (?path=…).
	FilesPath = "/v1/files"
	// TerminalPath+ID is a terminal's WebSocket (termwire protocol).
	TerminalPath = "/v1/terminals/"
	// TunnelPath is upgraded to a byte stream to a port in the sandbox.
	TunnelPath = "/v1/tunnel"
)
