package cairn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// The linker marks dangling links (docs/cross-graph.md). Removing a node
// x of graph X (RemoveNode removes its edges, the halves of its links
// included) or deleting X leaves every other graph's reference node "X/x"
// standing for nothing: the linker follows the event stream and sets the
// component ref.dangling (the removal's stream sequence) on each, with an
// idempotent command (its id derives from the graph, the reference node
// and the sequence; Decide refuses it unless the node is a reference
// node). Its position is kept in the key-value bucket LinkerBucket, so a
// restarted engine resumes there (marks it sends again are answered from
// the graphs' idempotency windows). A deleted graph's links are read as of
// just before its deletion, a time-travel build; the linker does it only
// for graphs it saw take a link (a reference node added), which it keeps
// in the same bucket (key linked.<graph>), so that deleting the many
// graphs that never linked costs nothing.

// LinkerBucket returns the name of the key-value bucket that holds the
// linker's position and its set of linked graphs, for the event stream
// named stream: each event store on a NATS has its own linker.
func LinkerBucket(stream string) string { return stream + "-linker" }

// linkerSave is how often the linker saves its position while it works.
const linkerSave = 500 * time.Millisecond

type linker struct {
	e    *Engine
	kv   jetstream.KeyValue
	stop context.CancelFunc
	done chan struct{}

	linked map[string]bool // graphs seen taking a link (linked.<graph>); the linker's goroutine's
}

// startLinker starts the linker on its own goroutine; Close stops it. Its
// bucket is created there, retried until it is (a JetStream cluster may
// still be electing its leaders while the engine starts), so that the
// linker never holds the engine's start up.
func (e *Engine) startLinker() {
	lctx, cancel := context.WithCancel(context.WithValue(context.Background(), linkStepKey{}, true))
	l := &linker{e: e, stop: cancel, done: make(chan struct{}), linked: map[string]bool{}}
	e.linker = l
	go l.run(lctx)
}

// open creates or opens the linker's bucket, retrying until it is there or
// ctx ends.
func (l *linker) open(ctx context.Context, log *slog.Logger) bool {
	js, err := jetstream.New(l.e.nc)
	if err != nil {
		log.LogAttrs(ctx, slog.LevelError, "linker: no JetStream; links left dangling are not marked", slog.String("err", err.Error()))
		return false
	}
	bucket := LinkerBucket(l.e.cfg.Store.Stream)
	for try := 0; ; try++ {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		l.kv, err = js.CreateOrUpdateKeyValue(octx, jetstream.KeyValueConfig{Bucket: bucket, Replicas: max(l.e.cfg.Store.Replicas, 1),
			Description: "cairn's linker: its stream position and the graphs that took a cross-graph link"})
		cancel()
		if err == nil {
			return true
		}
		if try == 2 {
			log.LogAttrs(ctx, slog.LevelWarn, "linker: cannot open its bucket yet; retrying", slog.String("bucket", bucket), slog.String("err", err.Error()))
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(time.Duration(min(try+1, 10)) * 200 * time.Millisecond):
		}
	}
}

// close stops the linker and waits for it.
func (l *linker) close() {
	l.stop()
	<-l.done
}

// Position returns the stream sequence the linker has handled, as saved.
func (l *linker) position(ctx context.Context) uint64 {
	ent, err := l.kv.Get(ctx, "position")
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(string(ent.Value()), 10, 64)
	return n
}

func (l *linker) run(ctx context.Context) {
	defer close(l.done)
	log := l.e.cfg.Logger.With("component", "linker")
	if !l.open(ctx, log) {
		return
	}
	if keys, err := l.kv.ListKeys(ctx, jetstream.IgnoreDeletes()); err == nil {
		for k := range keys.Keys() {
			if g, ok := strings.CutPrefix(k, "linked."); ok {
				l.linked[g] = true
			}
		}
	}
	for ctx.Err() == nil {
		from := l.position(ctx) + 1
		var done uint64
		saved := time.Now()
		err := l.e.store.FollowStored(ctx, from, func(f persistence.Followed) error {
			l.handle(ctx, f)
			done = f.Seq
			if f.Pending == 0 || time.Since(saved) > linkerSave {
				saved = time.Now()
				_, err := l.kv.Put(ctx, "position", []byte(strconv.FormatUint(done, 10)))
				return err
			}
			return nil
		})
		if ctx.Err() != nil {
			if done > 0 {
				sctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, _ = l.kv.Put(sctx, "position", []byte(strconv.FormatUint(done, 10)))
				cancel()
			}
			return
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			log.LogAttrs(ctx, slog.LevelWarn, "linker: following the stream failed; resuming", slog.String("err", err.Error()))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// handle marks what one transaction leaves dangling.
func (l *linker) handle(ctx context.Context, f persistence.Followed) {
	// Most transactions (nodes and edges added, components set) concern
	// no link: their stored bytes name none of the event types that do
	// (each event's envelope holds its type as text) and, for a graph not
	// known to link, no reference node. They are passed over undecoded.
	if f.Data != nil && !bytes.Contains(f.Data, removedType) && !bytes.Contains(f.Data, deletedType) &&
		(l.linked[f.Graph] || !bytes.Contains(f.Data, refCategory)) {
		return
	}
	f.Decode()
	if f.Err != nil || f.Tx == nil {
		return
	}
	var removedNodes map[string]bool
	var removedEdges []*cairnv1.EdgeRemoved
	for _, rec := range f.Tx.GetEvents() {
		env, err := persistence.DecodeEnvelope(rec.GetDagCbor())
		if err != nil {
			return
		}
		switch env.Type {
		case "NodeRemoved", "EdgeRemoved", "GraphDeleted":
		case "NodeAdded":
			// Only a reference node's matters: most are skipped undecoded.
			if l.linked[f.Graph] || !bytes.Contains(env.Body, refCategory) {
				continue
			}
		default:
			continue
		}
		ev := &cairnv1.Event{}
		if proto.Unmarshal(env.Body, ev) != nil {
			return
		}
		switch k := ev.GetKind().(type) {
		case *cairnv1.Event_NodeAdded:
			if !l.linked[f.Graph] && slices.Contains(k.NodeAdded.GetCategories(), aggregate.RefCategory) {
				l.noteLinked(ctx, f.Graph)
			}
		case *cairnv1.Event_NodeRemoved:
			if removedNodes == nil {
				removedNodes = map[string]bool{}
			}
			removedNodes[k.NodeRemoved.GetNodeId()] = true
		case *cairnv1.Event_EdgeRemoved:
			removedEdges = append(removedEdges, k.EdgeRemoved)
		case *cairnv1.Event_GraphDeleted:
			if l.linked[f.Graph] {
				l.graphDeleted(ctx, f.Graph, f.Seq)
			}
		}
	}
	for _, er := range removedEdges {
		for _, end := range [...][2]string{{er.GetSource(), er.GetTarget()}, {er.GetTarget(), er.GetSource()}} {
			local, ref := end[0], end[1]
			if !removedNodes[local] {
				continue
			}
			if other, _, ok := aggregate.SplitRefNodeID(ref); ok && !l.relinked(ctx, f.Graph, local, other, f.Seq) {
				l.mark(ctx, other, aggregate.RefNodeID(f.Graph, local), f.Seq)
			}
		}
	}
}

var (
	refCategory = []byte(aggregate.RefCategory)
	removedType = []byte("Removed") // NodeRemoved, EdgeRemoved
	deletedType = []byte("GraphDeleted")
)

// noteLinked records that graph took a link, in memory and in the bucket
// (retried until it is stored or the linker stops: a graph left out would
// keep its links live when it is deleted).
func (l *linker) noteLinked(ctx context.Context, graph string) {
	for try := 0; ctx.Err() == nil; try++ {
		if _, err := l.kv.Put(ctx, "linked."+graph, []byte{'1'}); err == nil {
			l.linked[graph] = true
			return
		}
		time.Sleep(time.Duration(min(try+1, 10)) * 100 * time.Millisecond)
	}
}

// graphDeleted marks every link of graph, deleted at seq, dangling in
// the graphs at their other ends: graph's links as of just before.
func (l *linker) graphDeleted(ctx context.Context, graph string, seq uint64) {
	cursor := ""
	for {
		rep := l.e.ask(ctx, &cairnv1.QueryRequest{GraphId: graph, AsOf: &cairnv1.AsOf{Point: &cairnv1.AsOf_Seq{Seq: seq - 1}},
			Query: &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{Cursor: cursor, Limit: 1000}}})
		if rep.GetError() != nil {
			l.e.cfg.Logger.LogAttrs(ctx, slog.LevelWarn, "linker: cannot list a deleted graph's links", slog.String("graph", graph), slog.String("err", rep.GetError().GetMessage()))
			return
		}
		for _, lk := range rep.GetLinks().GetLinks() {
			l.mark(ctx, lk.GetOtherGraph(), aggregate.RefNodeID(graph, lk.GetNodeId()), seq)
		}
		if cursor = rep.GetLinks().GetNextCursor(); cursor == "" {
			return
		}
	}
}

// relinked reports whether graph's node, removed at seq, holds a live link
// to other now: it was added and linked again since (the linker may be
// replaying old transactions, after a restore), so its old removal must
// not mark the link dangling. When graph cannot say, it is not.
func (l *linker) relinked(ctx context.Context, graph, node, other string, seq uint64) bool {
	rep := l.e.ask(ctx, &cairnv1.QueryRequest{GraphId: graph, MinSeq: seq,
		Query: &cairnv1.QueryRequest_ListLinks{ListLinks: &cairnv1.ListLinks{NodeId: node, Limit: 1000}}})
	for _, lk := range rep.GetLinks().GetLinks() {
		if lk.GetOtherGraph() == other && lk.GetDanglingSince() == 0 {
			return true
		}
	}
	return false
}

// mark sets ref.dangling = seq on graph's reference node ref.
func (l *linker) mark(ctx context.Context, graph, ref string, seq uint64) {
	h := sha256.Sum256([]byte(graph + "\x00" + ref + "\x00" + strconv.FormatUint(seq, 10)))
	env := &cairnv1.CommandEnvelope{GraphId: graph, CommandId: "cairn.link.dangling." + hex.EncodeToString(h[:20]), Issuer: aggregate.LinkIssuer,
		Commands: []*cairnv1.Command{{Kind: &cairnv1.Command_SetNodeComponents{SetNodeComponents: &cairnv1.SetNodeComponents{
			NodeId: ref, Components: []*cairnv1.Component{{Type: aggregate.RefDanglingComponent, Value: []byte(strconv.FormatUint(seq, 10))}}}}}}}
	for try := 0; try < 5 && ctx.Err() == nil; try++ {
		rep := l.e.dispatch(ctx, env)
		switch rep.GetError().GetCode() {
		case cairnv1.ErrorCode_ERROR_CODE_UNAVAILABLE, cairnv1.ErrorCode_ERROR_CODE_DEADLINE_EXCEEDED:
			time.Sleep(time.Duration(try+1) * 100 * time.Millisecond)
			continue
		}
		return // done, or refused: no such reference node (any more)
	}
}
