package agent

import (
	"log/slog"

	"github.com/hutch-sh/hutch/api/hutch/v1/hutchv1connect"
	"github.com/hutch-sh/hutch/internal/agent/exec"
	"github.com/hutch-sh/hutch/internal/agent/git"
	"github.com/hutch-sh/hutch/internal/agent/process"
	"github.com/hutch-sh/hutch/internal/agent/session"
	"github.com/hutch-sh/hutch/internal/agent/spawn"
)

// The ProcessService's calls are served by four packages; the aliases name
// the embedded fields apart (each type is called Service).
type (
	execs     = exec.Service
	processes = process.Service
	sessions  = session.Service
	gits      = git.Service
)

// processService is the ProcessService: exec, background processes,
// sessions and git, each its own package.
type processService struct {
	*execs
	*processes
	*sessions
	*gits
}

var _ hutchv1connect.ProcessServiceHandler = processService{}

func newProcessService(log *slog.Logger, sp *spawn.Spawner) processService {
	table := exec.NewTable()
	sess := session.New(log, sp, table)
	ex := exec.New(log, sp, table, sess)
	return processService{
		execs:     ex,
		processes: process.New(log, sp, table),
		sessions:  sess,
		gits:      git.New(ex, sp.Workdir()),
	}
}

// Close kills every background process and session shell the service
// started, and waits until they are gone.
func (p processService) Close() {
	p.processes.Close()
	p.sessions.Close()
}
