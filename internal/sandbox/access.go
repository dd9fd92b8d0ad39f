package sandbox

// Access is what a call does in a sandbox, which decides whether the call
// may create the sandbox: the manager applies the rule, callers only say
// what they do.
type Access int

const (
	// Existing calls act on what a sandbox already has (stat, list,
	// remove, rename, signal, wait, read a file): the sandbox must exist.
	Existing Access = iota
	// Adding calls put something new into a sandbox (a file, a directory,
	// a process, a session, a terminal, code to run): like exec, they
	// create the sandbox on demand.
	Adding
)
