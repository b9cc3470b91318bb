package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/internal/retry"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Executor runs one command envelope. *cairn.Engine is one; a NATS client
// of the "cairn" service (bench.Remote) is another. A refused envelope comes back as a
// reply with its error set (the returned error may then be anything); an
// error with no reply, or a reply with no error, leaves the outcome
// unknown and the envelope is sent again with the same command id.
type Executor interface {
	Execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error)
}

// Format is an input format.
type Format string

// The formats.
const (
	FormatEdgeList Format = "edgelist"
	FormatCSV      Format = "csv"
	FormatJSONL    Format = "jsonl"
)

// FormatOf is the format a file name implies: ".csv" is FormatCSV, ".jsonl"
// and ".ndjson" are FormatJSONL, anything else FormatEdgeList.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".csv":
		return FormatCSV
	case ".jsonl", ".ndjson":
		return FormatJSONL
	}
	return FormatEdgeList
}

// Counts are an import's tallies.
type Counts struct {
	// Lines read, comments, blank and bad lines included.
	Lines int64 `json:"lines"`
	// Nodes imported from node lines (nodes an edge creates on the fly are
	// not counted).
	Nodes int64 `json:"nodes"`
	// Edges imported.
	Edges int64 `json:"edges"`
	// Bad lines: unparsable, or refused by the engine.
	Bad int64 `json:"bad_lines"`
	// Existing: lines whose node or edge was there already (an earlier
	// import, or the same line twice); nothing was written for them, except
	// that a node line with components sets them on the existing node.
	Existing int64 `json:"existing"`
	// Envelopes sent and acknowledged.
	Envelopes int64 `json:"envelopes"`
	// Duplicates: envelopes the engine had applied before an interruption
	// that the checkpoint did not record; answered with their first result,
	// not applied again.
	Duplicates int64 `json:"duplicates"`
}

func (c *Counts) add(o Counts) {
	c.Lines += o.Lines
	c.Nodes += o.Nodes
	c.Edges += o.Edges
	c.Bad += o.Bad
	c.Existing += o.Existing
	c.Envelopes += o.Envelopes
	c.Duplicates += o.Duplicates
}

// Progress is a snapshot of a running import.
type Progress struct {
	Counts
	// File being read and its phase: "nodes" (a CSV nodes file) or "edges".
	File  string `json:"file"`
	Phase string `json:"phase"`
	// Bytes read of Total, over all files.
	Bytes int64 `json:"bytes"`
	Total int64 `json:"total_bytes"`
	// Elapsed in this run; Rate is edges per second in this run; ETA is
	// the time left at this run's byte rate (0 when unknown).
	Elapsed time.Duration `json:"elapsed_ns"`
	Rate    float64       `json:"edges_per_s"`
	ETA     time.Duration `json:"eta_ns"`
	// Done is set on the last call.
	Done bool `json:"done"`
}

// Result is what a finished (or stopped) import did, over every run that
// the checkpoint chained together.
type Result struct {
	Counts
	// ResumedAt is the line the run resumed after (0: started at the top);
	// ResumedPhase is that line's phase.
	ResumedAt    int64  `json:"resumed_at_line,omitempty"`
	ResumedPhase string `json:"resumed_phase,omitempty"`
	// Elapsed in this run and its rate in edges per second.
	Elapsed time.Duration `json:"elapsed_ns"`
	Rate    float64       `json:"edges_per_s"`
	// LastSeq is the highest stream sequence of this run's transactions: a
	// query with min_seq LastSeq sees the import.
	LastSeq uint64 `json:"last_seq"`
}

// Run imports path into graph through x. It reads the file once, in
// constant memory, sending its lines as envelopes of up to
// Config.BatchSize commands: a node line is an AddNode; an edge line a
// ConnectNodes with create_missing, so that nodes named only by edges are
// created on the fly.
//
// Progress is checkpointed: when ctx ends Run sends nothing more (no new
// envelope, no retry), waits at most Config.StopGrace for the envelopes in
// flight, abandons those still unanswered, records in the checkpoint what
// was acknowledged and returns an error wrapping ErrInterrupted that says
// where it stopped; running the same import again resumes there, and
// envelopes that were applied but not checkpointed (abandoned, or the
// process was killed) are answered as duplicates, never applied twice. The
// checkpoint is removed when the import completes.
//
// An envelope whose outcome is unknown is sent again with the same command
// id (Config.Retries, Config.RetryFor); when the retries run out Run stops
// with an error naming the last failure and the number of tries.
//
// Errors: ErrNoGraph, ErrInterrupted, a *LineError when Config.Strict and a
// line is bad, I/O errors, an invalid Config, and a *aggregate.CommandError
// for an envelope the engine refused as a whole.
func Run(ctx context.Context, x Executor, graph, path string, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	if err := aggregate.ValidateGraphID("graph", graph); err != nil {
		return Result{}, err
	}
	if cfg.Format == "" {
		cfg.Format = FormatOf(path)
	}
	if cfg.NodesFile != "" && cfg.Format != FormatCSV {
		return Result{}, errors.New("a nodes file goes with the csv format only")
	}
	r := &importRun{x: x, cfg: cfg, graph: graph, check: newChecker(graph), start: time.Now(), ctx: ctx}
	// Requests outlive ctx by up to StopGrace (see await), so that what is
	// in flight when ctx ends can still be acknowledged and checkpointed.
	r.sendCtx, r.abandon = context.WithCancel(context.WithoutCancel(ctx))
	defer func() {
		r.abandon()
		if r.grace != nil {
			r.grace.Stop()
		}
	}()
	var phases []phase
	if cfg.NodesFile != "" {
		phases = append(phases, phase{name: "nodes", path: cfg.NodesFile})
	}
	phases = append(phases, phase{name: "edges", path: path})
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range phases {
		f, err := os.Open(phases[i].path)
		if err != nil {
			return Result{}, err
		}
		files = append(files, f)
		st, err := f.Stat()
		if err != nil {
			return Result{}, err
		}
		phases[i].f, phases[i].size = f, st.Size()
		r.total += st.Size()
	}
	id, err := identity(graph, cfg.Format, cfg.BatchSize, files...)
	if err != nil {
		return Result{}, fmt.Errorf("read %s: %w", path, err)
	}
	r.prefix = "imp-" + id + "-"
	r.ckptPath = cfg.Checkpoint
	if r.ckptPath == "" {
		r.ckptPath = path + ".cairn-import"
	}
	r.ckpt = checkpoint{Version: checkpointVersion, Identity: id, Phase: phases[0].name}
	if !cfg.NoResume {
		c, err := loadCheckpoint(r.ckptPath, id)
		if err != nil {
			return Result{}, err
		}
		if c != nil {
			r.ckpt = *c
			r.res.ResumedAt, r.res.ResumedPhase = c.Line, c.Phase
		}
	}
	r.counts = r.ckpt.Counts
	if cfg.Create {
		if err := r.createGraph(ctx); err != nil {
			return r.result(), err
		}
	}
	skip := true
	for _, p := range phases {
		if skip && p.name != r.ckpt.Phase {
			r.doneBytes += p.size
			continue
		}
		off, line := int64(0), int64(0)
		if skip {
			off, line = r.ckpt.Offset, r.ckpt.Line
		}
		skip = false
		if err := r.importFile(ctx, p, off, line); err != nil {
			if r.ckpt.Offset > 0 || r.ckpt.Phase != phases[0].name {
				if serr := r.ckpt.save(r.ckptPath); serr != nil {
					err = errors.Join(err, serr)
				}
			}
			r.progress(true)
			return r.result(), err
		}
		r.doneBytes += p.size
	}
	r.progress(true)
	if err := os.Remove(r.ckptPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return r.result(), fmt.Errorf("remove checkpoint: %w", err)
	}
	return r.result(), nil
}

type phase struct {
	name, path string
	f          *os.File
	size       int64
}

// importRun is one run of Run.
type importRun struct {
	x        Executor
	cfg      Config
	ctx      context.Context // Run's: when it ends, nothing more is sent
	sendCtx  context.Context // requests': ends StopGrace after ctx, or when Run returns
	abandon  context.CancelFunc
	grace    *time.Timer // started when ctx is first seen ended
	stopped  bool        // ctx ended before every envelope was acknowledged
	graph    string
	prefix   string // of command ids
	check    *checker
	ckptPath string
	ckpt     checkpoint // what is acknowledged
	counts   Counts     // acknowledged, all runs
	res      Result
	queue    []*batch // sent, oldest first
	failed   error    // the first envelope that failed for good

	file      string // being read
	phaseName string
	dec       decoder
	start     time.Time
	runEdges  int64 // edges acknowledged in this run
	total     int64 // bytes of every file
	doneBytes int64 // bytes of the phases before this one
	startByte int64 // bytes already done when this run started
	lastProg  time.Time
	lastSave  time.Time
}

// batch is one envelope's worth of lines.
type batch struct {
	id      string
	cmds    []*cairnv1.Command
	lines   []int64 // each command's line
	barrier bool    // holds node lines: nothing may pass it
	phase   string
	endOff  int64 // where the next batch starts
	endLine int64
	pre     Counts // lines and bad lines found while reading
	done    chan struct{}
	res     batchResult
}

type batchResult struct {
	Counts
	bad []*LineError
	seq uint64
	err error
}

func (r *importRun) result() Result {
	res := r.res
	res.Counts = r.counts
	res.Elapsed = time.Since(r.start)
	res.Rate = float64(r.runEdges) / res.Elapsed.Seconds()
	return res
}

func (r *importRun) createGraph(ctx context.Context) error {
	env := &cairnv1.CommandEnvelope{GraphId: r.graph, CommandId: r.prefix + "create", Issuer: r.cfg.Issuer,
		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_CreateGraph{CreateGraph: &cairnv1.CreateGraph{}}}}}
	rep, err := r.execute(ctx, env)
	if err != nil {
		return err
	}
	if e := rep.GetError(); e != nil && !(e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS && !strings.Contains(e.GetMessage(), "deleted")) {
		return fmt.Errorf("create graph %s: %w", r.graph, aggregate.ErrorFromProto(e))
	}
	return nil
}

// importFile reads one file from off (line lines in) to its end.
func (r *importRun) importFile(ctx context.Context, p phase, off, line int64) error {
	r.file, r.phaseName = p.path, p.name
	if r.ckpt.Phase != p.name {
		r.ckpt.Phase, r.ckpt.Offset, r.ckpt.Line = p.name, 0, 0
	}
	firstLine := line
	switch r.cfg.Format {
	case FormatCSV:
		cols, hdrEnd, hdrLines, err := readCSVHeader(io.NewSectionReader(p.f, 0, p.size), p.name == "nodes")
		if err != nil {
			return fmt.Errorf("%s: %w", p.path, err)
		}
		if off < hdrEnd {
			// The header's lines count with the first envelope's.
			off, line, firstLine = hdrEnd, hdrLines, 0
		}
		r.dec = newCSVFile(io.NewSectionReader(p.f, off, p.size-off), off, line, cols, p.name == "nodes", r.check)
	case FormatJSONL:
		r.dec = newLineDecoder(io.NewSectionReader(p.f, off, p.size-off), off, line, r.check, parseJSONLine)
	default:
		r.dec = newLineDecoder(io.NewSectionReader(p.f, off, p.size-off), off, line, r.check, parseEdgeLine)
	}
	r.startByte = r.doneBytes + off
	letter := p.name[:1]
	cur := r.newBatch(letter, off, firstLine)
	for r.failed == nil {
		if ctx.Err() != nil {
			r.stopped = true
			r.drain()
			return r.stopErr(nil)
		}
		prevOff, prevLine := r.dec.pos()
		rec, err := r.dec.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.drain()
			return r.stopErr(fmt.Errorf("read %s: %w", p.path, err))
		}
		if rec.bad != "" {
			le := &LineError{File: p.path, Line: rec.line, Message: rec.bad}
			r.badLine(le)
			if r.cfg.Strict {
				// Send the lines before it; the checkpoint stays before it.
				// The batch is cut short, so it is not the envelope a run
				// without --strict sends under its id: it gets its own
				// (the engine refuses an id reused for other commands).
				cur.endOff, cur.endLine = prevOff, prevLine
				cur.id += "-strict"
				r.launch(cur)
				r.drain()
				r.counts.Bad++
				return r.stopErr(le)
			}
			cur.pre.Bad++
			continue
		}
		if rec.cmd == nil {
			continue
		}
		cur.cmds = append(cur.cmds, rec.cmd)
		cur.lines = append(cur.lines, rec.line)
		if _, ok := rec.cmd.GetKind().(*cairnv1.Command_AddNode); ok {
			cur.barrier = true
		}
		if len(cur.cmds) == r.cfg.BatchSize {
			cur.endOff, cur.endLine = r.dec.pos()
			r.launch(cur)
			cur = r.newBatch(letter, cur.endOff, cur.endLine)
		}
	}
	if r.failed == nil {
		cur.endOff, cur.endLine = r.dec.pos()
		r.launch(cur)
	}
	r.drain()
	return r.stopErr(nil)
}

// stopErr returns the failure that stopped the import, else where an
// interruption stopped it, else err.
func (r *importRun) stopErr(err error) error {
	if r.failed != nil && !errors.Is(r.failed, ErrInterrupted) {
		return r.failed
	}
	if r.stopped || r.failed != nil {
		file := r.file
		if r.ckpt.Phase == "nodes" {
			file = r.cfg.NodesFile
		}
		return fmt.Errorf("%w: stopped after line %d of %s (%s phase); everything before it is acknowledged and recorded in %s: run the same import again to resume there",
			ErrInterrupted, r.ckpt.Line, file, r.ckpt.Phase, r.ckptPath)
	}
	return err
}

func (r *importRun) newBatch(letter string, off, line int64) *batch {
	return &batch{
		id: r.prefix + letter + strconv.FormatInt(off, 10), phase: r.phaseName,
		endOff: off, endLine: line, pre: Counts{Lines: -line}, done: make(chan struct{}),
		cmds: make([]*cairnv1.Command, 0, r.cfg.BatchSize), lines: make([]int64, 0, r.cfg.BatchSize),
	}
}

// launch sends b, keeping at most InFlight envelopes in flight; a barrier
// waits for everything before it and is waited for. Once ctx has ended it
// sends nothing: b is dropped, and the checkpoint stays before it.
func (r *importRun) launch(b *batch) {
	b.pre.Lines += b.endLine
	if b.barrier {
		r.drain()
	}
	if r.ctx.Err() != nil {
		r.stopped = true
		return
	}
	r.queue = append(r.queue, b)
	if len(b.cmds) > 0 && r.failed == nil {
		go r.send(b)
	} else {
		close(b.done)
	}
	limit := r.cfg.InFlight
	if b.barrier {
		limit = 1
	}
	for len(r.queue) >= limit {
		r.pop()
	}
}

// drain waits for every envelope in flight.
func (r *importRun) drain() {
	for len(r.queue) > 0 {
		r.pop()
	}
}

// pop waits for the oldest envelope in flight and records its result.
func (r *importRun) pop() {
	b := r.queue[0]
	r.queue = r.queue[1:]
	r.await(b)
	if r.failed != nil {
		return // nothing after a failure is checkpointed
	}
	for _, le := range b.res.bad {
		r.badLine(le)
	}
	if b.res.err != nil {
		r.failed = b.res.err
		return
	}
	c := b.res.Counts
	c.add(b.pre)
	r.counts.add(c)
	r.runEdges += b.res.Edges
	r.res.LastSeq = max(r.res.LastSeq, b.res.seq)
	r.ckpt.Phase, r.ckpt.Offset, r.ckpt.Line, r.ckpt.Counts = b.phase, b.endOff, b.endLine, r.counts
	now := time.Now()
	if now.Sub(r.lastSave) >= time.Second {
		r.lastSave = now
		if err := r.ckpt.save(r.ckptPath); err != nil {
			r.failed = err
			return
		}
	}
	if now.Sub(r.lastProg) >= r.cfg.ProgressEvery {
		r.lastProg = now
		r.progress(false)
	}
}

// await waits for b to be answered. Once ctx has ended it waits at most
// StopGrace from when it first saw that, then abandons every request in
// flight; b then ends at once, unacknowledged.
func (r *importRun) await(b *batch) {
	select {
	case <-b.done:
		return
	case <-r.ctx.Done():
	}
	if r.grace == nil {
		r.grace = time.AfterFunc(r.cfg.StopGrace, r.abandon)
	}
	<-b.done
}

func (r *importRun) badLine(le *LineError) {
	if r.cfg.OnBadLine != nil {
		r.cfg.OnBadLine(le)
	}
}

func (r *importRun) progress(done bool) {
	if r.cfg.OnProgress == nil {
		return
	}
	p := Progress{Counts: r.counts, File: r.file, Phase: r.phaseName, Total: r.total, Elapsed: time.Since(r.start), Done: done}
	p.Bytes = r.doneBytes
	if r.dec != nil && !done {
		off, _ := r.dec.pos()
		p.Bytes += off
	}
	if done && r.failed == nil {
		p.Bytes = r.total
	}
	if s := p.Elapsed.Seconds(); s > 0 {
		p.Rate = float64(r.runEdges) / s
		if rate := float64(p.Bytes-r.startByte) / s; rate > 0 && !done {
			p.ETA = time.Duration(float64(p.Total-p.Bytes) / rate * float64(time.Second))
		}
	}
	r.cfg.OnProgress(p)
}

// send runs b, dropping refused commands one by one: each is reported as a
// bad line (or counted as existing) and the rest is sent again under the
// batch's id plus "-r" and the number dropped, so that a resumed import
// sends the very same envelopes.
func (r *importRun) send(b *batch) {
	defer close(b.done)
	cmds, lines := b.cmds, b.lines
	for dropped := 0; len(cmds) > 0; {
		id := b.id
		if dropped > 0 {
			id += "-r" + strconv.Itoa(dropped)
		}
		env := &cairnv1.CommandEnvelope{GraphId: r.graph, CommandId: id, Issuer: r.cfg.Issuer, Commands: cmds}
		rep, err := r.execute(r.ctx, env)
		if err != nil {
			b.res.err = err
			return
		}
		e := rep.GetError()
		if e == nil {
			for _, c := range cmds {
				switch c.GetKind().(type) {
				case *cairnv1.Command_ConnectNodes:
					b.res.Edges++
				case *cairnv1.Command_AddNode:
					b.res.Nodes++
				}
			}
			b.res.Envelopes++
			if rep.GetDuplicate() {
				b.res.Duplicates++
			}
			b.res.seq = rep.GetSeq()
			return
		}
		i, ok := commandIndex(e.GetField())
		if !ok || i >= len(cmds) {
			if e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND && e.GetField() == "graph_id" {
				b.res.err = fmt.Errorf("graph %s: %w", r.graph, ErrNoGraph)
			} else {
				b.res.err = fmt.Errorf("envelope %s refused: %w", id, aggregate.ErrorFromProto(e))
			}
			return
		}
		if e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS {
			if an, ok := cmds[i].GetKind().(*cairnv1.Command_AddNode); ok && len(an.AddNode.GetCategories()) == 0 && len(an.AddNode.GetComponents()) > 0 {
				// The node exists (an edge made it): set its components.
				cmds = slices.Clone(cmds)
				cmds[i] = &cairnv1.Command{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{
					NodeId: an.AddNode.GetNodeId(), Components: an.AddNode.GetComponents()}}}
				b.res.Existing++
				dropped++
				continue
			}
		}
		switch {
		case e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS && !isNodeWithCategories(cmds[i]):
			b.res.Existing++
		case e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS,
			e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_INVALID_ARGUMENT, e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_NOT_FOUND:
			le := &LineError{File: r.fileOf(b), Line: lines[i], Message: e.GetMessage()}
			if e.GetCode() == cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS {
				le.Message += "; categories cannot be added to an existing node"
			}
			b.res.Bad++
			b.res.bad = append(b.res.bad, le)
			if r.cfg.Strict {
				b.res.err = le
				return
			}
		default:
			b.res.err = fmt.Errorf("envelope %s refused: %w", id, aggregate.ErrorFromProto(e))
			return
		}
		cmds = slices.Delete(slices.Clone(cmds), i, i+1)
		lines = slices.Delete(slices.Clone(lines), i, i+1)
		dropped++
		if r.ctx.Err() != nil {
			// The rest would go out as a new envelope: not after ctx ended.
			b.res.err = fmt.Errorf("envelope %s: %w", b.id, ErrInterrupted)
			return
		}
	}
}

func (r *importRun) fileOf(b *batch) string {
	if b.phase == "nodes" {
		return r.cfg.NodesFile
	}
	return r.file
}

func isNodeWithCategories(c *cairnv1.Command) bool {
	an, ok := c.GetKind().(*cairnv1.Command_AddNode)
	return ok && len(an.AddNode.GetCategories()) > 0
}

// execute sends env, again with the same id when the outcome is unknown
// (no reply, or UNAVAILABLE or DEADLINE_EXCEEDED), backing off between
// tries as Config's retry policy says. Each request runs under sendCtx (it
// may finish within StopGrace after ctx ends); the back-off waits on ctx,
// and no try starts once ctx has ended. It returns the reply, refused or
// not, or the last failure: with the number of tries when they ran out,
// wrapping ErrInterrupted when ctx ended.
func (r *importRun) execute(ctx context.Context, env *cairnv1.CommandEnvelope) (*cairnv1.CommandReply, error) {
	var out *cairnv1.CommandReply
	err := r.cfg.retryPolicy().Do(ctx, func(ctx context.Context, _ int) (bool, error) {
		if ctx.Err() != nil {
			return false, fmt.Errorf("%w: %w", ErrInterrupted, ctx.Err())
		}
		rctx, cancel := context.WithTimeout(r.sendCtx, r.cfg.RequestTimeout)
		rep, err := r.x.Execute(rctx, env)
		cancel()
		e := rep.GetError()
		switch {
		case e != nil && !retry.Retryable(e.GetCode()):
			out = rep // refused: final, whatever err says
			return false, nil
		case e != nil:
			return true, aggregate.ErrorFromProto(e)
		case err != nil:
			return true, err // a reply without an error, but no answer
		case rep == nil:
			return true, errors.New("no reply and no error")
		}
		out = rep
		return false, nil
	})
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil && !errors.Is(err, ErrInterrupted) {
		err = fmt.Errorf("%w: %w", ErrInterrupted, err)
	}
	return nil, fmt.Errorf("envelope %s: %w", env.GetCommandId(), err)
}

// commandIndex parses the i of a field path "commands[i]...".
func commandIndex(field string) (int, bool) {
	rest, ok := strings.CutPrefix(field, "commands[")
	if !ok {
		return 0, false
	}
	n, _, ok := strings.Cut(rest, "]")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil && i >= 0
}
