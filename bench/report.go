package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Goals the figures are held to; missing one is reported, not an error.
const (
	goalCreate      = 35 * time.Millisecond
	goalExec        = 3 * time.Millisecond
	goalExecsPerSec = 500
	goalStdoutMBps  = 500
)

// results are every figure of one run.
type results struct {
	Cores       int
	Runc        string
	Image       string
	Create      latency // through the warm pool
	CreateCold  latency // without one
	Floor       latency
	Exec        latency
	ExecsPerSec float64
	StdoutMBps  float64
	WriteMBps   float64
	ReadMBps    float64
	Preview     previewResult
	StartReady  latency // StartProcess of a server until WaitForPort
	// Keystroke is one key to its echo over the terminal WebSocket.
	Keystroke       latency
	TerminalCatMBps float64 // cat of a 100 MB file through a terminal
	PTYFloorMBps    float64 // the same cat through a PTY inside the sandbox
	// A file created in the sandbox until its create event reaches the
	// client; events per second of a burst of creates.
	WatchLatency latency
	WatchPerSec  float64
	WatchLost    bool // the burst overflowed
	Egress       egressResult
	Code         codeFigures
}

func (r *results) missed() []string {
	var m []string
	if r.Create.Median > goalCreate {
		m = append(m, "create")
	}
	if r.Exec.Median > goalExec {
		m = append(m, "exec_round_trip")
	}
	if r.ExecsPerSec < goalExecsPerSec {
		m = append(m, "execs_per_second")
	}
	if r.StdoutMBps < goalStdoutMBps {
		m = append(m, "stdout")
	}
	return m
}

const labelWidth, figureWidth = 30, 64

func (r *results) writeTable(w io.Writer) {
	fmt.Fprintf(w, "hutch bench (%d cores, %s, image %s)\n", r.Cores, r.Runc, r.Image)
	row(w, "create → first exec", lat(r.Create), goalText(fmt.Sprintf("goal ≤ %d ms", goalCreate.Milliseconds()), r.Create.Median <= goalCreate))
	row(w, "  cold (no warm pool)", lat(r.CreateCold), fmt.Sprintf("%.1f ms over the floor", float64(r.CreateCold.Median-r.Floor.Median)/1e6))
	row(w, "  floor: plain runc run", lat(r.Floor), "")
	row(w, "exec round trip (true)", lat(r.Exec), goalText(fmt.Sprintf("goal ≤ %d ms", goalExec.Milliseconds()), r.Exec.Median <= goalExec))
	row(w, fmt.Sprintf("execs/s, %d concurrent clients", clients), fmt.Sprintf("%5.0f /s", r.ExecsPerSec),
		goalText(fmt.Sprintf("goal ≥ %d/s", goalExecsPerSec), r.ExecsPerSec >= goalExecsPerSec))
	row(w, "stdout throughput", fmt.Sprintf("%5.0f MB/s", r.StdoutMBps),
		goalText(fmt.Sprintf("goal ≥ %d MB/s", goalStdoutMBps), r.StdoutMBps >= goalStdoutMBps))
	row(w, "file write 1 GiB", fmt.Sprintf("%5.0f MB/s", r.WriteMBps), "")
	row(w, "file read 1 GiB", fmt.Sprintf("%5.0f MB/s", r.ReadMBps), "")
	row(w, "preview URL GET (http.server)", lat(r.Preview.Via), fmt.Sprintf("+%.2f ms over the sandbox's address", float64(r.Preview.Via.Median-r.Preview.Direct.Median)/1e6))
	row(w, "  direct to its address", lat(r.Preview.Direct), "")
	row(w, fmt.Sprintf("preview requests/s, %d clients", clients), fmt.Sprintf("%5.0f /s", r.Preview.ViaRPS), fmt.Sprintf("direct to the address: %.0f /s", r.Preview.DirectRPS))
	row(w, "start server → port ready", lat(r.StartReady), "")
	row(w, "watch: create → client event", fmt.Sprintf("median %s   p99 %s   min %s   (%d runs)", ms(r.WatchLatency.Median), ms(r.WatchLatency.P99), ms(r.WatchLatency.Min), r.WatchLatency.Runs), "")
	note := fmt.Sprintf("%d creates, none lost", watchBurst)
	if r.WatchLost {
		note = fmt.Sprintf("%d creates, overflow reported", watchBurst)
	}
	row(w, "watch events/s (burst)", fmt.Sprintf("%6.0f /s", r.WatchPerSec), note)
	for _, l := range codeLanguages {
		row(w, "code: first "+l+" context", lat(r.Code.Start[l]), "new context → first 1+1 done")
	}
	for _, l := range codeLanguages {
		row(w, "code: 1+1 warm, "+l, lat(r.Code.RoundTrip[l]), "")
	}
	for _, l := range codeLanguages {
		row(w, "code: output, "+l, fmt.Sprintf("%5.0f MB/s", r.Code.StreamMBps[l]), fmt.Sprintf("%d MiB printed in 1 KiB lines", codeStreamMB))
	}
	r.writeTerminalRows(w)
	r.writeEgressRows(w)
}

func (r *results) writeTerminalRows(w io.Writer) {
	row(w, "terminal keystroke echo", fmt.Sprintf("median %s   p99 %s   min %s   (%d runs)", ms(r.Keystroke.Median), ms(r.Keystroke.P99), ms(r.Keystroke.Min), r.Keystroke.Runs),
		"WebSocket → daemon → agent PTY → bash → back")
	row(w, "terminal cat 100 MB", fmt.Sprintf("%5.0f MB/s", r.TerminalCatMBps),
		fmt.Sprintf("floor: the same cat through a PTY inside the sandbox, %.0f MB/s", r.PTYFloorMBps))
}

func row(w io.Writer, label, figure, note string) {
	fmt.Fprintln(w, strings.TrimRight(fmt.Sprintf("%-*s %-*s %s", labelWidth, label, figureWidth, figure, note), " "))
}

func lat(l latency) string {
	return fmt.Sprintf("median %s   p90 %s   min %s   (%d runs)", ms(l.Median), ms(l.P90), ms(l.Min), l.Runs)
}

func ms(d time.Duration) string { return fmt.Sprintf("%6.2f ms", float64(d)/1e6) }

func goalText(goal string, met bool) string {
	if met {
		return goal
	}
	return goal + "   MISSED"
}

// jsonLatency is a latency in milliseconds.
type jsonLatency struct {
	MedianMs float64 `json:"median_ms"`
	P90Ms    float64 `json:"p90_ms"`
	P99Ms    float64 `json:"p99_ms"`
	MinMs    float64 `json:"min_ms"`
	Runs     int     `json:"runs"`
}

func toJSON(l latency) jsonLatency {
	return jsonLatency{MedianMs: float64(l.Median) / 1e6, P90Ms: float64(l.P90) / 1e6, P99Ms: float64(l.P99) / 1e6, MinMs: float64(l.Min) / 1e6, Runs: l.Runs}
}

func (r *results) writeJSON(w io.Writer) error {
	missed := r.missed()
	if missed == nil {
		missed = []string{}
	}
	out := struct {
		Cores            int                    `json:"cores"`
		Runc             string                 `json:"runc"`
		Image            string                 `json:"image"`
		Create           jsonLatency            `json:"create_first_exec"`
		CreateCold       jsonLatency            `json:"create_first_exec_cold"`
		Floor            jsonLatency            `json:"floor_runc_run"`
		Exec             jsonLatency            `json:"exec_round_trip"`
		Clients          int                    `json:"concurrent_clients"`
		ExecsPerSec      float64                `json:"execs_per_second"`
		StdoutMBps       float64                `json:"stdout_mb_per_s"`
		FileWriteMBps    float64                `json:"file_write_mb_per_s"`
		FileReadMBps     float64                `json:"file_read_mb_per_s"`
		PreviewVia       jsonLatency            `json:"preview_get"`
		PreviewDirect    jsonLatency            `json:"preview_get_direct"`
		PreviewRPS       float64                `json:"preview_requests_per_s"`
		PreviewDirectRPS float64                `json:"preview_direct_requests_per_s"`
		StartReady       jsonLatency            `json:"start_to_port_ready"`
		Keystroke        jsonLatency            `json:"terminal_keystroke_echo"`
		TerminalCat      float64                `json:"terminal_cat_mb_per_s"`
		PTYFloor         float64                `json:"pty_cat_in_sandbox_mb_per_s"`
		WatchLatency     jsonLatency            `json:"watch_event_latency"`
		WatchPerSec      float64                `json:"watch_events_per_s"`
		WatchLost        bool                   `json:"watch_burst_overflowed"`
		EgressDirect     jsonLatency            `json:"egress_https_get_direct"`
		EgressTunnel     jsonLatency            `json:"egress_https_get_tunnelled"`
		EgressIntercept  jsonLatency            `json:"egress_https_get_intercepted"`
		EgressRPS        [3]float64             `json:"egress_requests_per_s_direct_tunnelled_intercepted"`
		CodeStart        map[string]jsonLatency `json:"code_first_context"`
		CodeRoundTrip    map[string]jsonLatency `json:"code_round_trip"`
		CodeStream       map[string]float64     `json:"code_output_mb_per_s"`
		GoalsMissed      []string               `json:"goals_missed"`
	}{
		Cores: r.Cores, Runc: r.Runc, Image: r.Image,
		Create: toJSON(r.Create), CreateCold: toJSON(r.CreateCold), Floor: toJSON(r.Floor), Exec: toJSON(r.Exec),
		Clients: clients, ExecsPerSec: r.ExecsPerSec, StdoutMBps: r.StdoutMBps,
		FileWriteMBps: r.WriteMBps, FileReadMBps: r.ReadMBps, GoalsMissed: missed,
		PreviewVia: toJSON(r.Preview.Via), PreviewDirect: toJSON(r.Preview.Direct), PreviewRPS: r.Preview.ViaRPS, PreviewDirectRPS: r.Preview.DirectRPS, StartReady: toJSON(r.StartReady),
		Keystroke: toJSON(r.Keystroke), TerminalCat: r.TerminalCatMBps, PTYFloor: r.PTYFloorMBps,
		WatchLatency: toJSON(r.WatchLatency), WatchPerSec: r.WatchPerSec, WatchLost: r.WatchLost,
		EgressDirect: toJSON(r.Egress.Direct), EgressTunnel: toJSON(r.Egress.Tunnel), EgressIntercept: toJSON(r.Egress.Intercept),
		EgressRPS: [3]float64{r.Egress.DirectRPS, r.Egress.TunnelRPS, r.Egress.InterceptRPS},
		CodeStart: map[string]jsonLatency{}, CodeRoundTrip: map[string]jsonLatency{}, CodeStream: r.Code.StreamMBps,
	}
	for _, l := range codeLanguages {
		out.CodeStart[l], out.CodeRoundTrip[l] = toJSON(r.Code.Start[l]), toJSON(r.Code.RoundTrip[l])
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
