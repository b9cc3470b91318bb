// Package actors holds Cairn's actors: the graph aggregate grain, the
// dispatcher that routes commands to it, the projection shards that answer
// queries (live and as of any point of a graph's history), the aggregate
// and read-model snapshots, the "cairn" NATS micro service gateway, and the
// render actor that feeds the viewer.
//
// # The aggregate
//
// The graph's state, the decisions and the group commit live in package
// aggregate, which does no I/O: aggregate.Core takes envelopes and append
// outcomes and says what to answer and what to append. Its invariants and
// limits are documented there; refusals are *aggregate.CommandError values
// naming the field.
//
// # The grain
//
// Kind "graph", identity = graph id: the I/O adapter around an
// aggregate.Core. On activation it loads the newest trusted snapshot and
// replays the transactions after it (or the whole history), checking the
// chain; the replay has no overall time limit, only one on progress
// (AppendTimeout without a transaction read), so a large graph always
// activates. It feeds each envelope to the core; when the core hands it a
// batch (group commit: the envelopes that queued behind the previous
// append, within GrainConfig.Aggregate's command and byte budgets), it seals
// the batch into one CID-chained transaction, appends it with optimistic
// concurrency (expected last subject sequence) off the actor (on a reused
// goroutine; persistence.Store.AppendWithin, whose time-out is a shared
// coarse one, no timer per append), retries an unanswered publish with a
// doubling back-off (one refused for want of a stream leader until
// AppendTimeout, at once when the store says a leader was elected), and
// feeds the outcome back:
// the core answers each command with the head CID and stream sequence, or,
// on a conflict, the grain folds what the other writer stored and the core
// decides once more, then answers CONFLICT. A transaction larger than the
// store accepts is refused before it is sent (RESOURCE_EXHAUSTED). The last
// Aggregate.Window command ids and their results are remembered (rebuilt on
// replay): a retry gets the original result with duplicate = true and never
// a second transaction. Refused commands are not remembered: nothing was
// written, so a retry is decided afresh. Idle grains passivate after
// PassivateAfter.
//
// # The dispatcher
//
// Dispatcher.Execute finds the graph's grain through the cluster (the PID
// cache, else the identity lookup that activates it). A grain on this member
// gets the envelope with a reply channel, which costs no future, timer or
// registry entry: when the caller's ctx has no deadline, the dispatcher's
// timeout is a coarse one that the commands ending in the same 10 ms share
// (internal/deadline). A grain on another member gets the protobuf
// envelope as a cluster request. Grain and projection-shard mailboxes, and
// the grains' append retries and traced appends, run on goroutines that are
// used again (internal/workers; protoactor's default starts one per mailbox
// run, whose stack then grows afresh). A grain sends the first try of an
// append itself (persistence.Store.AppendAsync), and the stream's
// acknowledgement comes back to its mailbox from the store's reply
// subscription. A command that reaches a grain just as it passivates is
// lost with the grain's mailbox (as with protoactor futures): the caller gets
// UNAVAILABLE at its deadline, and a retry with the same command id is safe.
//
// # Projections
//
// Projections is the read side. One reader goroutine follows the whole
// event-store stream from its start (persistence.Store.Follow, an ordered
// consumer) and sends each transaction, in stream order, to shard
// FNV-1a(graph id) mod ProjectionConfig.Shards (default: one per CPU). A
// shard is a plain protoactor actor (not a cluster grain) that owns a
// readmodel.Graph per graph: it checks the transaction as the next stretch
// of its graph's chain (persistence.Chain: CIDs, links, positions), decodes
// its events and applies them with ApplyTx, all or nothing; a redelivered
// sequence changes nothing.
//
// Queries run inside the shard actor, as a message between two
// transactions, so a query never sees half of one and the read models need
// no locks. Each shard publishes the stream sequence up to which it has
// applied all of its transactions; the reader also sends every shard a
// watermark whenever it catches up with the stream (and every 1,024
// messages while behind), so the position moves for shards whose graphs are
// idle. WaitFor(ctx, graph, minSeq) blocks until the graph's shard reaches
// minSeq, else answers DEADLINE_EXCEEDED: a query that passes a write's seq
// as min_seq reads that write. Every answer carries as_of_seq, the shard's
// position when the query ran.
//
// The catalogue (catalogue.go): a describe_graph query answers a graph's
// entry (type, metadata, counts, head, created and changed times, deleted,
// stopped and why) from its read model; Projections.Across answers
// list_graphs and find_across, the requests about many graphs, from every
// shard, merged by graph id (GatherAcross, which a cluster member also
// uses to merge the members' shares), with cursors that name where a page
// ended, and with as_of a seq through time travel, graph by graph.
//
// Nothing the reader delivers is trusted: each transaction is checked as
// the continuation of its graph's chain (persistence.Chain: CIDs, the link
// to the head before it, positions, and with ProjectionConfig.Trust its
// signature) before it is applied. A transaction this member's grains
// appended through the same store comes back with the events they sealed
// (persistence.Followed.Sealed) when the bytes read are the ones
// published: it is not decoded again, but its graph, its link to the head
// and its signature are checked all the same. A transaction that fails, or whose
// events do not apply, quarantines its graph: it is logged, counted
// (Failures), listed by Stopped, and every query on the graph answers
// DATA_LOSS "projection of graph g stopped at seq N: ..." (INTERNAL for a
// read-model panic); later transactions of the graph are not applied,
// other graphs go on, and grains of the graph answer DATA_LOSS too
// (GrainConfig.Quarantined). Every ProjectionConfig.AuditEvery the
// projections compare the stream's census with what they applied, so a
// purge, a deleted message or a deleted stream quarantines the graphs it
// touches (see audit.go). Projections.Repair (cairn repair) mends a graph
// stopped by a message that was never part of its chain.
//
// With ProjectionConfig.Snapshots set, the reader starts a snapshot round
// every SnapshotEvery events, when it first catches up and on Close: every
// shard, at one stream position, writes the binary snapshot of each graph
// that changed (readmodel.Graph.AppendSnapshot inside the actor, the upload
// on a goroutine) and a manifest (Manifest, series "projections") names them
// all. Start restores the newest manifest whose snapshots all load and pass
// CheckHead, holding queries until the shards have them, and follows the
// stream from its sequence + 1; a bad one is logged, counted and skipped
// for the older one, and finally for a rebuild from the stream start.
//
// Time travel: a query with as_of (a sequence, a time or an event CID) is
// answered off the shards from a view: the nearest cached view or trusted
// read-model snapshot at or before that point, plus the graph's transactions
// up to it, read across archive and stream (HistoryStore). Views are cached
// in a bounded LRU (ViewCacheEntries), one build per point at a time.
//
// # Aggregate snapshots
//
// With GrainConfig.Snapshots set, a grain snapshots its state
// (aggregate.Marshal: the state's packed arrays and intern tables as they
// are, the idempotency window and a CRC-32C; format 3) every SnapshotEvery
// events — more often would cost too much for a big state, so the interval
// grows with it — and when it stops (pruning then only past one more than
// it keeps); it keeps
// SnapshotKeep. The snapshot store finds a graph's snapshots through its
// per-graph index (persistence.Snapshots), not by listing the bucket. The actor only
// freezes the state (aggregate.State.Freeze, O(pages)); the encoding,
// compression and upload run on a goroutine. Activation
// loads the newest snapshot that decodes and whose head passes CheckHead
// and replays only the tail; a snapshot of another format is passed over
// and the history replayed once. StateAt folds the state at any earlier
// sequence the same way.
//
// The reader hands a shard at most
// 65,536 events it has not applied yet, then waits: a reader far ahead of
// a slow shard holds back instead of buffering the stream. When the reader
// first reaches the end of the stream, every shard compacts its read
// models (Graph.Compact), giving back what the rebuild left spare.
//
// Each shard caches answers (elastic/go-freelru, no goroutine; 4,096
// entries of at most 8 KiB, 1 minute TTL by default;
// ProjectionConfig.SizeCaches sizes it and the time-travel caches from a
// memory limit) under the graph, its version (events applied) and the
// query's deterministic wire form, so a write makes every earlier answer
// unreachable, and the shard removes them as soon as it caches an answer
// of the newer version (they would otherwise stay live heap, marked by
// every garbage collection, until the LRU or the TTL dropped them); errors
// are not cached. A cached reply says cached and
// carries the shard's current as_of_seq; CacheStats counts hits and
// misses, and the gateway shows them in the query endpoint's stats (the
// command endpoint's carry the grains' counters and the process's memory,
// ReadMemory). Query errors name the request field at fault
// ("list_neighbors.cursor", "shortest_path.to_node_id", "k_hop.limits").
//
//	p, err := actors.NewProjections(system, store, actors.DefaultProjectionConfig())
//	p.Start()
//	defer p.Close(ctx)
//	rep := p.Query(ctx, &cairnv1.QueryRequest{GraphId: "g", MinSeq: writeReply.GetSeq(),
//		Query: &cairnv1.QueryRequest_GetNode{GetNode: &cairnv1.GetNode{NodeId: "alice"}}})
//
// # The gateway
//
// The NATS micro service "cairn" takes a protobuf cairn.v1.CommandEnvelope on
// subject "cairn.command.<graph>" and answers a protobuf cairn.v1.CommandReply,
// and (when given a Querier) a protobuf cairn.v1.QueryRequest on
// "cairn.query.<graph>", answered with a cairn.v1.QueryReply; a request whose
// graph_id is not its subject's graph, and malformed input, get
// INVALID_ARGUMENT and the service keeps serving. The un-graphed
// "cairn.command" and "cairn.query" are served too, deprecated.
//
// Requests run on long-lived workers (internal/workers: a worker waits a
// second for the next request before it exits), and so do the projection
// shards' mailboxes (protoactor starts a goroutine per mailbox run by
// default): a fresh goroutine grew its stack, a copy, on every query.
// A point query (get_node, get_edge, list_neighbors, find_nodes) that needs
// no wait (the projections are ready, its shard has reached its min_seq, no
// as_of, no traceparent to follow) is answered on the subscription's own
// goroutine instead (NowQuerier, Projections.QueryNow): it reads the
// shard's read model under the shard's state lock, which the shard actor
// holds while it handles each message, and only when the lock is free
// (TryLock), so a long apply never holds up the subscription: such a query
// then takes the worker and the mailbox as any other. Projections.Query
// reads the same way once its waits are over.
//
//	data, _ := proto.Marshal(envelope)
//	msg, err := nc.Request(api.CommandSubjectFor(envelope.GraphId), data, 5*time.Second)
//	reply := &cairnv1.CommandReply{}
//	_ = proto.Unmarshal(msg.Data, reply)
//
// # The render actor
//
// StartRender runs a plain protoactor actor that shows one graph: a reader
// goroutine of its own follows the graph (persistence.Store.FollowGraph:
// archive, stream, then live, every transaction chain-checked) and hands
// the transactions to the actor, which folds them into a scene.Scene
// (viewer/scene) and publishes scene.Frames to a scene.Exchange. It
// publishes only on a credit (one at the start, one per Frame the GL thread
// acquires), so a slow viewer gets the changes of many transactions merged
// into one Frame; the reader waits only when MaxQueued transactions wait
// for the actor, never for the viewer, and it is not the projections'
// reader. A render further than MaxLag behind the head jumps to the newest
// trusted read-model snapshot (a keyframe: Scene.Load). StopAt ends it at a
// sequence (as-of, a replay's end; Reached); TxPerFrame paces a replay.
// The source is any *persistence.Store: the engine's own (Engine.Store) in
// process, or one a viewer process opened over NATS.
//
//	x := scene.NewExchange()
//	r, err := actors.StartRender(system.Root, x, actors.RenderConfig{Graph: "g",
//		Source: eng.Store(), Snapshots: eng.Snapshots(), FromSnapshot: true})
//	defer r.Stop(ctx)
//	// on the GL thread, each frame:
//	if f := x.Acquire(); f != nil { /* upload f's dirty ranges, draw */ }
package actors
