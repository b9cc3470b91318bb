package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/eventstream"
)

// placementName is the name of every member's placement actor, the parent
// of the grains it activated.
const placementName = "cairn-placement"

// Lookup is Cairn's identity lookup (a protoactor cluster.IdentityLookup):
// an identity of a kind is owned by the live member hosting that kind with
// the highest rendezvous score for it (a hash of kind, identity and member
// id, so every member that sees the same topology picks the same owner),
// and the owner's placement actor activates it.
//
// Unlike protoactor's disthash it takes the caller's context (GetContext;
// Get bounds itself by Config.RequestTimeout), swaps its table under a
// lock, never routes to a member that left the topology and does not
// block ids (each start of a member has a fresh id). An owner refuses to
// activate an identity its own table does not give it, and the caller
// retries until its deadline: members whose views of the topology differ
// for a moment do not both activate it.
//
// Hand-over when ownership moves: the new owner looks the identity up in
// the topology before the last change (for a member that just joined, the
// topology without itself). When that previous owner is still
// a live member (a member joined, or views differ), the new owner asks it
// to stop its activation (a protoactor ActivationTerminating request) and
// activates only when it answered (ActivationTerminated: the grain has
// stopped and drained) or after Config.HandoverMargin. When the previous
// owner left the topology, no wait is needed: it left by deleting its key
// after stopping its grains, or its key expired, and a member's lease
// ends (it fences itself, see KVConfig) before its key can expire. The
// event store's per-graph expected sequence remains the last fence
// against two activations at once.
type Lookup struct {
	timeout time.Duration
	margin  time.Duration
	log     *slog.Logger

	cluster   *cluster.Cluster
	self      string // this member's address
	placement *actor.PID
	subs      []*eventstream.Subscription

	mu   sync.RWMutex
	cur  *table // the current topology
	prev *table // the topology before the last change
	// changed is closed at the next topology change (and replaced).
	changed chan struct{}

	fenced atomic.Bool
	// leaving: the member is shutting down and activates nothing more.
	leaving atomic.Bool
	// leaseValid, when set, tells whether this member's membership lease
	// is still valid (the KV provider's); nil for a single member.
	leaseValid func() bool
}

var _ cluster.IdentityLookup = (*Lookup)(nil)

// table is one topology: its members by kind and by id.
type table struct {
	hash   uint64
	byKind map[string][]*cluster.Member
	byID   map[string]*cluster.Member
}

func newTable(t *cluster.ClusterTopology) *table {
	tb := &table{byKind: map[string][]*cluster.Member{}, byID: map[string]*cluster.Member{}}
	if t == nil {
		return tb
	}
	tb.hash = t.TopologyHash
	for _, m := range t.Members {
		tb.byID[m.Id] = m
		for _, k := range m.Kinds {
			tb.byKind[k] = append(tb.byKind[k], m)
		}
	}
	return tb
}

// owner returns the member that owns identity of kind, nil when no member
// hosts kind.
func (t *table) owner(kind, identity string) *cluster.Member {
	var best *cluster.Member
	var bestScore uint64
	for _, m := range t.byKind[kind] {
		s := score(kind, identity, m.Id)
		if best == nil || s > bestScore || (s == bestScore && m.Id > best.Id) {
			best, bestScore = m, s
		}
	}
	return best
}

// score is the rendezvous score of a member for an identity: FNV-1a over
// the three strings, finished with a 64-bit mix so that similar member ids
// do not score alike.
func score(kind, identity, member string) uint64 {
	h := fnv.New64a()
	var n [8]byte
	for _, s := range []string{kind, identity, member} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = h.Write(n[:])
		_, _ = h.Write([]byte(s))
	}
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// newLookup returns a lookup whose Get waits timeout at most and whose new
// owners wait margin at most for a previous owner's stop.
func newLookup(timeout, margin time.Duration, log *slog.Logger) *Lookup {
	return &Lookup{timeout: timeout, margin: margin, log: log.With("component", "identity-lookup"), cur: newTable(nil), prev: newTable(nil),
		changed: make(chan struct{})}
}

// Setup is called by protoactor's Cluster.StartMember before the
// provider starts.
func (l *Lookup) Setup(c *cluster.Cluster, _ []string, _ bool) {
	l.cluster = c
	l.self = c.ActorSystem.Address()
	es := c.ActorSystem.EventStream
	l.subs = append(l.subs, es.Subscribe(func(ev any) {
		switch ev := ev.(type) {
		case *cluster.ClusterTopology:
			l.onTopology(ev)
		case *cluster.ActivationTerminated:
			// Another member's grain stopped: a cached PID of it is stale.
			if ci := ev.GetClusterIdentity(); ci != nil {
				c.PidCache.RemoveByValue(ci.Identity, ci.Kind, ev.GetPid())
			}
		}
	}))
	props := actor.PropsFromProducer(func() actor.Actor {
		return &placement{l: l, active: map[string]activation{}, byPID: map[string]string{}, waiting: map[string][]*actor.PID{}, releasing: map[string][]*actor.PID{}}
	})
	pid, err := c.ActorSystem.Root.SpawnNamed(props, placementName)
	if err != nil {
		l.log.Error("placement actor did not start", slog.String("err", err.Error()))
	}
	l.placement = pid
}

// onTopology swaps the table under the lock, then tells the placement
// actor, which stops the activations this member no longer owns.
func (l *Lookup) onTopology(t *cluster.ClusterTopology) {
	tb := newTable(t)
	l.mu.Lock()
	if len(l.cur.byID) == 0 {
		// This member's first topology: the identities it takes were
		// owned by the others before it joined.
		others := &cluster.ClusterTopology{}
		for _, m := range t.Members {
			if m.Address() != l.self { // not m.Id: the Kubernetes provider's ids are its own
				others.Members = append(others.Members, m)
			}
		}
		l.prev = newTable(others)
	} else {
		l.prev = l.cur
	}
	l.cur = tb
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
	if l.placement != nil {
		l.cluster.ActorSystem.Root.Send(l.placement, t)
	}
}

// Shutdown stops the placement actor (and so every grain it activated).
func (l *Lookup) Shutdown() {
	if l.cluster == nil {
		return
	}
	for _, s := range l.subs {
		l.cluster.ActorSystem.EventStream.Unsubscribe(s)
	}
	l.subs = nil
	if l.placement != nil {
		_ = l.cluster.ActorSystem.Root.StopFuture(l.placement).Wait()
	}
}

// RemovePid tells every member that pid of identity is gone.
func (l *Lookup) RemovePid(ci *cluster.ClusterIdentity, pid *actor.PID) {
	l.cluster.PidCache.RemoveByValue(ci.Identity, ci.Kind, pid)
	l.broadcast(&cluster.ActivationTerminated{Pid: pid, ClusterIdentity: ci})
}

// broadcast sends msg to the event stream of every other member in the
// current topology.
func (l *Lookup) broadcast(msg any) {
	l.mu.RLock()
	addrs := make([]string, 0, len(l.cur.byID))
	for _, m := range l.cur.byID {
		if a := m.Address(); a != l.self {
			addrs = append(addrs, a)
		}
	}
	l.mu.RUnlock()
	for _, a := range addrs {
		l.cluster.ActorSystem.Root.Send(actor.NewPID(a, "eventstream"), msg)
	}
}

// Get returns the activation of ci, activating it on its owner if needed,
// or nil when there is none within Config.RequestTimeout.
func (l *Lookup) Get(ci *cluster.ClusterIdentity) *actor.PID {
	ctx, cancel := context.WithTimeout(context.Background(), l.timeout)
	defer cancel()
	pid, err := l.GetContext(ctx, ci.Identity, ci.Kind)
	if err != nil {
		l.log.LogAttrs(ctx, slog.LevelDebug, "lookup failed", slog.String("identity", ci.Identity), slog.String("kind", ci.Kind), slog.String("err", err.Error()))
	}
	return pid
}

// GetContext returns the activation of identity of kind, activating it on
// its owner if needed. It retries (owners whose view of the topology
// differs refuse, a dead owner does not answer) until ctx ends. Errors:
// ErrFenced when this member fenced itself; else, when ctx ends, ctx's
// error joined with the last attempt's (ErrNoMember when no live member
// hosted kind).
func (l *Lookup) GetContext(ctx context.Context, identity, kind string) (*actor.PID, error) {
	backoff := 5 * time.Millisecond
	var last error
	for {
		if l.Fenced() {
			return nil, ErrFenced
		}
		l.mu.RLock()
		owner, hash, changed := l.cur.owner(kind, identity), l.cur.hash, l.changed
		l.mu.RUnlock()
		if owner == nil {
			last = fmt.Errorf("%w for kind %s", ErrNoMember, kind)
		} else {
			pid, err := l.activate(ctx, changed, owner, identity, kind, hash)
			if pid != nil {
				return pid, nil
			}
			last = err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("look up %s/%s: %w (last: %w)", kind, identity, context.Cause(ctx), last)
		case <-changed:
			// A new topology: try its owner at once.
			t.Stop()
			backoff = 5 * time.Millisecond
			continue
		case <-t.C:
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// activate asks owner's placement actor for the activation, bounded by ctx.
// It gives up when the topology changes and owner is no longer in it: a
// request to a member that died may get no answer at all while the remote
// retries its connection.
func (l *Lookup) activate(ctx context.Context, changed <-chan struct{}, owner *cluster.Member, identity, kind string, hash uint64) (*actor.PID, error) {
	wait := l.timeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	if wait <= 0 {
		return nil, context.DeadlineExceeded
	}
	req := &cluster.ActivationRequest{ClusterIdentity: cluster.NewClusterIdentity(identity, kind), TopologyHash: hash}
	f := l.cluster.ActorSystem.Root.RequestFuture(actor.NewPID(owner.Address(), placementName), req, wait)
	res, err := l.await(ctx, changed, f, owner.Address())
	if err != nil {
		return nil, fmt.Errorf("owner %s (%s): %w", owner.Id, owner.Address(), err)
	}
	resp, ok := res.(*cluster.ActivationResponse)
	if !ok || resp.Failed || resp.Pid == nil {
		return nil, fmt.Errorf("owner %s (%s) refused the activation (its topology differs, it is handing over or fenced)", owner.Id, owner.Address())
	}
	return resp.Pid, nil
}

// Await returns f's result, a request's to the member at address, or
// ctx's error when it ends first, or ErrMemberLeft when that member is
// not, or no longer, in the topology: a request to a member that died may
// stay unanswered until its timeout while the remote retries its
// connection.
func (l *Lookup) Await(ctx context.Context, f *actor.Future, address string) (any, error) {
	l.mu.RLock()
	changed := l.changed
	l.mu.RUnlock()
	if !l.live(address) {
		return nil, ErrMemberLeft
	}
	return l.await(ctx, changed, f, address)
}

// await is Await with the topology change to watch for from the caller.
func (l *Lookup) await(ctx context.Context, changed <-chan struct{}, f *actor.Future, address string) (any, error) {
	type result struct {
		res any
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := f.Result()
		done <- result{res, err}
	}()
	for {
		select {
		case r := <-done:
			return r.res, r.err
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-changed:
			l.mu.RLock()
			changed = l.changed
			l.mu.RUnlock()
			if !l.live(address) {
				return nil, ErrMemberLeft
			}
		}
	}
}

// live reports whether a member listens at address in the current
// topology.
func (l *Lookup) live(address string) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	for _, m := range l.cur.byID {
		if m.Address() == address {
			return true
		}
	}
	return false
}

// Owner returns the id and address of the member that owns identity of
// kind in this member's current topology, false when none hosts kind.
func (l *Lookup) Owner(identity, kind string) (id, address string, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	m := l.cur.owner(kind, identity)
	if m == nil {
		return "", "", false
	}
	return m.Id, m.Address(), true
}

// Changed returns a channel that is closed at the next topology change.
func (l *Lookup) Changed() <-chan struct{} {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.changed
}

// Members returns the ids of the members in this member's current
// topology.
func (l *Lookup) Members() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	ids := make([]string, 0, len(l.cur.byID))
	for id := range l.cur.byID {
		ids = append(ids, id)
	}
	return ids
}

// Fenced reports whether this member fenced itself: its lookup refuses
// every activation from then on.
func (l *Lookup) Fenced() bool {
	if l.fenced.Load() {
		return true
	}
	return l.leaseValid != nil && !l.leaseValid()
}

// fence makes this member refuse activations and stops its grains.
func (l *Lookup) fence() {
	if l.fenced.Swap(true) || l.placement == nil {
		return
	}
	l.cluster.ActorSystem.Root.Send(l.placement, fenceNow{})
}

// fenceNow tells the placement actor to stop every grain.
type fenceNow struct{}

// activation is a grain this member activated.
type activation struct {
	pid *actor.PID
	ci  *cluster.ClusterIdentity
}

// placement activates the identities this member owns, as its children.
type placement struct {
	l      *Lookup
	active map[string]activation // by identity key
	byPID  map[string]string     // identity key by grain PID id
	// waiting holds the requesters of an identity whose previous owner is
	// being asked to stop it.
	waiting map[string][]*actor.PID
	// releasing holds the new owners waiting for an activation of ours to
	// stop.
	releasing map[string][]*actor.PID
}

func (p *placement) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *cluster.ActivationRequest:
		p.onRequest(ctx, m)
	case *cluster.ActivationTerminating:
		p.onRelease(ctx, m)
	case *actor.Terminated:
		p.onTerminated(ctx, m.Who)
	case *cluster.ClusterTopology:
		p.onTopology(ctx)
	case fenceNow:
		for _, a := range p.active {
			ctx.Stop(a.pid)
		}
		p.l.log.Warn("member fenced: stopping its grains and refusing activations", slog.Int("grains", len(p.active)))
	case *actor.Stopping:
		for _, a := range p.active {
			ctx.Stop(a.pid)
		}
	}
}

func (p *placement) onRequest(ctx actor.Context, m *cluster.ActivationRequest) {
	ci := m.GetClusterIdentity()
	if ci == nil {
		ctx.Respond(&cluster.ActivationResponse{Failed: true})
		return
	}
	key := ci.AsKey()
	if a, ok := p.active[key]; ok && !p.l.Fenced() {
		if _, alive := ctx.ActorSystem().ProcessRegistry.Get(a.pid); alive {
			ctx.Respond(&cluster.ActivationResponse{Pid: a.pid})
			return
		}
		// Stopped (passivated), its Terminated not handled yet: forget it.
		p.onTerminated(ctx, a.pid)
	}
	p.l.mu.RLock()
	owner, prev, hash := p.l.cur.owner(ci.Kind, ci.Identity), p.l.prev.owner(ci.Kind, ci.Identity), p.l.cur.hash
	var prevAlive bool
	if prev != nil {
		_, prevAlive = p.l.cur.byID[prev.Id]
	}
	p.l.mu.RUnlock()
	if p.l.Fenced() || p.l.leaving.Load() || owner == nil || owner.Address() != p.l.self {
		ctx.Respond(&cluster.ActivationResponse{Failed: true, TopologyHash: hash})
		return
	}
	if w, ok := p.waiting[key]; ok {
		p.waiting[key] = append(w, ctx.Sender())
		return
	}
	if prev == nil || !prevAlive || prev.Address() == p.l.self {
		ctx.Respond(p.spawn(ctx, ci))
		return
	}
	// The identity was another live member's: ask it to stop its
	// activation, and activate when it has or after the margin.
	p.waiting[key] = []*actor.PID{ctx.Sender()}
	f := ctx.RequestFuture(actor.NewPID(prev.Address(), placementName), &cluster.ActivationTerminating{ClusterIdentity: ci}, p.l.margin)
	start := time.Now()
	ctx.ReenterAfter(f, func(_ any, err error) {
		if err != nil {
			p.l.log.Info("previous owner did not confirm the stop; activating after the margin", slog.String("identity", key), slog.String("previous", prev.Id), slog.Duration("waited", time.Since(start)), slog.String("err", err.Error()))
		}
		senders := p.waiting[key]
		delete(p.waiting, key)
		var resp *cluster.ActivationResponse
		p.l.mu.RLock()
		stillOwner := p.l.cur.owner(ci.Kind, ci.Identity)
		p.l.mu.RUnlock()
		if p.l.Fenced() || p.l.leaving.Load() || stillOwner == nil || stillOwner.Address() != p.l.self {
			resp = &cluster.ActivationResponse{Failed: true}
		} else {
			resp = p.spawn(ctx, ci)
		}
		for _, s := range senders {
			if s != nil {
				ctx.Send(s, resp)
			}
		}
	})
}

// spawn activates ci (or returns its activation).
func (p *placement) spawn(ctx actor.Context, ci *cluster.ClusterIdentity) *cluster.ActivationResponse {
	key := ci.AsKey()
	if a, ok := p.active[key]; ok {
		if _, alive := ctx.ActorSystem().ProcessRegistry.Get(a.pid); alive {
			return &cluster.ActivationResponse{Pid: a.pid}
		}
		p.onTerminated(ctx, a.pid)
	}
	kind, ok := p.l.cluster.TryGetClusterKind(ci.Kind)
	if !ok {
		p.l.log.Error("activation of a kind this member does not host", slog.String("kind", ci.Kind))
		return &cluster.ActivationResponse{Failed: true}
	}
	pid, err := ctx.SpawnNamed(cluster.WithClusterIdentity(kind.Props, ci), ci.Identity+"$"+ci.Kind)
	if err != nil {
		// A name still taken: the previous activation has not stopped yet.
		return &cluster.ActivationResponse{Failed: true}
	}
	kind.Inc()
	p.active[key] = activation{pid: pid, ci: ci}
	p.byPID[pid.Id] = key
	return &cluster.ActivationResponse{Pid: pid}
}

// onRelease stops our activation of an identity a new owner took, and
// answers when it has stopped.
func (p *placement) onRelease(ctx actor.Context, m *cluster.ActivationTerminating) {
	ci := m.GetClusterIdentity()
	if ci == nil {
		ctx.Respond(&cluster.ActivationTerminated{})
		return
	}
	key := ci.AsKey()
	a, ok := p.active[key]
	if !ok {
		ctx.Respond(&cluster.ActivationTerminated{ClusterIdentity: ci})
		return
	}
	p.releasing[key] = append(p.releasing[key], ctx.Sender())
	ctx.Stop(a.pid)
}

func (p *placement) onTerminated(ctx actor.Context, who *actor.PID) {
	key, ok := p.byPID[who.Id]
	if !ok {
		return
	}
	a := p.active[key]
	delete(p.byPID, who.Id)
	delete(p.active, key)
	if kind, ok := p.l.cluster.TryGetClusterKind(a.ci.Kind); ok {
		kind.Dec()
	}
	done := &cluster.ActivationTerminated{Pid: who, ClusterIdentity: a.ci}
	for _, s := range p.releasing[key] {
		if s != nil {
			ctx.Send(s, done)
		}
	}
	delete(p.releasing, key)
	p.l.cluster.PidCache.RemoveByValue(a.ci.Identity, a.ci.Kind, who)
	p.l.broadcast(done)
}

// onTopology stops the activations this member no longer owns.
func (p *placement) onTopology(ctx actor.Context) {
	p.l.mu.RLock()
	defer p.l.mu.RUnlock()
	for _, a := range p.active {
		if o := p.l.cur.owner(a.ci.Kind, a.ci.Identity); o == nil || o.Address() != p.l.self {
			ctx.Stop(a.pid)
		}
	}
}
