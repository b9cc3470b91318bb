package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// KVConfig configures membership over a NATS JetStream key-value bucket
// (Config.Membership = MembershipNATSKV).
//
// Each member writes one key, its member id (fresh on every start), whose
// value is its address and kinds, with a per-key TTL; it rewrites the key
// every Heartbeat, each write expecting the key's last revision. Every
// member watches the bucket and publishes the live members as protoactor's
// ClusterTopology (see publish).
//
// Two clocks. TTL is how long a dead member keeps its graphs: the others
// drop a member whose key went TTL + Heartbeat without a put while the
// bucket took their own heartbeats (and for three heartbeats since it last
// came back), and delete its key. KeyTTL, longer with replicas, is the
// key's TTL on the server and the member's hard lease: a NATS leader
// election of the bucket (several seconds, during which nobody's heartbeat
// is acknowledged) must neither expire the keys nor fence the members, or
// every election fenced the whole cluster.
//
// A member fences itself, for good, when it finds its key gone (a
// heartbeat's expected revision is refused, or the watcher sees the key
// deleted: the others dropped it), or when no heartbeat was acknowledged
// for KeyTTL minus LeaseMargin. Between TTL minus LeaseMargin (its soft
// lease) and that, a member that must write first tries a heartbeat at
// once (Member.Check): refused, it fences; unanswered (the bucket has no
// leader, for the others too), it writes on, and the event store's
// per-graph expected sequence stays the fence. A fenced member stops its
// grains, refuses activations and lookups, logs why, and closes
// Member.Fenced. Start a new member (a fresh id) to join again.
type KVConfig struct {
	// JetStream is the JetStream context to use; give the member a NATS
	// connection of its own, so that no other traffic delays its
	// heartbeats. Required.
	JetStream jetstream.JetStream
	// Bucket is the bucket's name. Default "cairn-members-" + the cluster
	// name.
	Bucket string
	// Replicas is the bucket's replica count (3 on a 3-node NATS
	// cluster). Default 1.
	Replicas int
	// TTL is how long a dead member keeps its graphs: the others drop a
	// member that went TTL + Heartbeat without a heartbeat while the
	// bucket took theirs. Whole seconds, at least 1. Default 3 seconds.
	TTL time.Duration
	// KeyTTL is the member key's TTL on the server and the member's hard
	// lease (see above). Whole seconds, at least TTL. Default TTL with one
	// replica; with more, at least 15 s, above a NATS leader election
	// (about 5 to 8 s after a kill here).
	KeyTTL time.Duration
	// Heartbeat is how often the key is rewritten: less than TTL/2.
	// Default 1 second.
	Heartbeat time.Duration
	// LeaseMargin is taken off the TTL for the member's own lease, for
	// clock rate differences and scheduling delays. Default 500 ms.
	LeaseMargin time.Duration
	// ApartFrom names JetStream streams whose leader's node should not
	// also lead the bucket (the engine names its event stream). When one
	// node leads both, one of the members (the one with the least id)
	// asks the bucket's leader to step down in favour of a current
	// replica that leads none of them, checking every apartEvery: the
	// death of that node would otherwise stop the heartbeats and the
	// writes at once, and the others could only drop the dead member
	// (and take its graphs) after the bucket's own election, seconds
	// after the stream's. Default none.
	ApartFrom []string
}

// DefaultKVConfig returns the defaults (without a JetStream context).
func DefaultKVConfig() KVConfig {
	return KVConfig{Replicas: 1, TTL: 3 * time.Second, Heartbeat: time.Second, LeaseMargin: 500 * time.Millisecond}
}

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// validate returns every problem with c, joined.
func (c KVConfig) validate() error {
	var errs []error
	if c.Bucket != "" && !bucketName.MatchString(c.Bucket) {
		errs = append(errs, fmt.Errorf("membership bucket %q: only letters, digits, - and _", c.Bucket))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("membership bucket replicas %d: 1 to 5", c.Replicas))
	}
	if c.TTL < time.Second || c.TTL%time.Second != 0 {
		errs = append(errs, fmt.Errorf("membership TTL %v: whole seconds, at least 1 s", c.TTL))
	}
	if c.Heartbeat <= 0 || 2*c.Heartbeat >= c.TTL {
		errs = append(errs, fmt.Errorf("membership heartbeat %v: positive and less than half the TTL %v", c.Heartbeat, c.TTL))
	}
	if c.KeyTTL != 0 && (c.KeyTTL < c.TTL || c.KeyTTL%time.Second != 0) {
		errs = append(errs, fmt.Errorf("membership key TTL %v: whole seconds, at least the TTL %v", c.KeyTTL, c.TTL))
	}
	if c.LeaseMargin < 0 || c.LeaseMargin >= c.TTL-c.Heartbeat {
		errs = append(errs, fmt.Errorf("membership lease margin %v: not negative and less than TTL - heartbeat", c.LeaseMargin))
	}
	return errors.Join(errs...)
}

// kvProvider is a protoactor cluster provider on a NATS KV bucket.
type kvProvider struct {
	cfg    KVConfig
	log    *slog.Logger
	lookup *Lookup

	cluster *cluster.Cluster
	kv      jetstream.KeyValue
	key     string
	subject string

	// published is the set of members last published.
	published map[string]*cluster.Member
	// rev is the key's last revision; hbMu serializes the heartbeats
	// (the loop's and Check's).
	hbMu  sync.Mutex
	value []byte
	rev   uint64
	// ackRev and ackSent are the last acknowledged heartbeat: its
	// revision (the watcher must deliver it) and when it was sent (the
	// leases run from it).
	ackMu   sync.Mutex
	ackRev  uint64
	ackSent time.Time

	joined   chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	// ids is the ids of the members last published, sorted (for apart,
	// which runs on a goroutine of its own).
	ids atomic.Pointer[[]string]

	fenced    chan struct{}
	fenceOnce sync.Once
	fenceErr  atomic.Pointer[error]
	// pause, in tests, suspends heartbeats until it passes (UnixNano).
	pause atomic.Int64
}

var _ cluster.ClusterProvider = (*kvProvider)(nil)

func newKVProvider(cfg KVConfig, clusterName string, lookup *Lookup, log *slog.Logger) *kvProvider {
	if cfg.Bucket == "" {
		cfg.Bucket = BucketName(clusterName)
	}
	if cfg.KeyTTL == 0 {
		cfg.KeyTTL = cfg.TTL
		if cfg.Replicas > 1 {
			cfg.KeyTTL = max(cfg.TTL, replicatedKeyTTL)
		}
	}
	return &kvProvider{cfg: cfg, lookup: lookup, log: log.With("component", "membership", "bucket", cfg.Bucket),
		joined: make(chan struct{}), stop: make(chan struct{}), fenced: make(chan struct{})}
}

// startTimeout bounds StartMember's reads and writes of the bucket. A
// start that fails is tried again (the engine's join, with a back-off
// from 100 ms): a request that went to a node still catching up after a
// pause hung for the whole bound (a paused member rejoined 10 s after it
// resumed, where a second try took 0.2 s), so the bound is short.
const startTimeout = 3 * time.Second

// replicatedKeyTTL is KeyTTL's least default on a replicated bucket.
const replicatedKeyTTL = 15 * time.Second

// leaseValid reports whether the hard lease still runs.
func (p *kvProvider) leaseValid() bool {
	p.ackMu.Lock()
	defer p.ackMu.Unlock()
	return p.ackSent.IsZero() || time.Since(p.ackSent) < p.cfg.KeyTTL-p.cfg.LeaseMargin // zero: not joined yet
}

// softLeaseValid reports whether the soft lease still runs: no other
// member can have dropped this one yet.
func (p *kvProvider) softLeaseValid() bool {
	p.ackMu.Lock()
	defer p.ackMu.Unlock()
	return p.ackSent.IsZero() || time.Since(p.ackSent) < p.cfg.TTL-p.cfg.LeaseMargin
}

// StartMember creates the bucket if needed, writes this member's key,
// reads the members there are, hands them to the member list and starts
// the heartbeat and the watcher.
func (p *kvProvider) StartMember(c *cluster.Cluster) error {
	p.cluster = c
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return fmt.Errorf("membership: member address: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	p.kv, err = p.cfg.JetStream.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         p.cfg.Bucket,
		Description:    "Cairn cluster members: one key per live member, kept alive by heartbeats",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       p.cfg.Replicas,
		LimitMarkerTTL: p.cfg.KeyTTL,
	})
	if err != nil {
		return fmt.Errorf("membership bucket %s: %w", p.cfg.Bucket, err)
	}
	p.key = c.ActorSystem.ID
	p.subject = "$KV." + p.cfg.Bucket + "." + p.key
	kinds := c.GetClusterKinds()
	sort.Strings(kinds)
	value, err := json.Marshal(MemberInfo{ID: p.key, Host: host, Port: port, Kinds: kinds})
	if err != nil {
		return err
	}
	sent := time.Now()
	p.value = value
	if p.rev, err = p.kv.Create(ctx, p.key, value, jetstream.KeyTTL(p.cfg.KeyTTL)); err != nil {
		return fmt.Errorf("membership: write member key %s: %w", p.key, err)
	}
	p.acked(p.rev, sent)
	watcher, members, err := p.sync(ctx)
	if err != nil {
		return err
	}
	if _, ok := members[p.key]; !ok {
		_ = watcher.Stop()
		return fmt.Errorf("membership: this member's key %s is not in the bucket", p.key)
	}
	p.publish(members)
	p.log.Info("joined the cluster", slog.String("member", p.key), slog.String("address", c.ActorSystem.Address()), slog.Int("members", len(members)))
	p.wg.Add(2)
	go p.heartbeat()
	go p.watch(watcher, members)
	if len(p.cfg.ApartFrom) > 0 && p.cfg.Replicas > 1 {
		p.wg.Add(1)
		go p.apart()
	}
	close(p.joined)
	return nil
}

// sync watches the bucket afresh and returns the watcher and the members
// its initial values hold; ctx bounds the reading of those (the watcher
// itself runs until stopped).
func (p *kvProvider) sync(ctx context.Context) (jetstream.KeyWatcher, map[string]*cluster.Member, error) {
	w, err := p.kv.WatchAll(context.Background())
	if err != nil {
		return nil, nil, fmt.Errorf("membership: watch bucket: %w", err)
	}
	members := map[string]*cluster.Member{}
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, nil, errors.New("membership: the bucket watcher stopped")
			}
			if e == nil {
				return w, members, nil
			}
			p.apply(members, e)
		case <-ctx.Done():
			_ = w.Stop()
			return nil, nil, fmt.Errorf("membership: read members: %w", ctx.Err())
		}
	}
}

// acked records this member's last acknowledged heartbeat: its key's
// revision and when it was sent.
func (p *kvProvider) acked(rev uint64, sent time.Time) {
	p.ackMu.Lock()
	p.ackRev, p.ackSent = rev, sent
	p.ackMu.Unlock()
}

// StartClient is not supported: every Cairn process is a member.
func (p *kvProvider) StartClient(*cluster.Cluster) error {
	return errors.New("membership: cluster clients are not supported")
}

// apply applies a watched entry to members and reports whether the set
// of members changed.
func (p *kvProvider) apply(members map[string]*cluster.Member, e jetstream.KeyValueEntry) bool {
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var r MemberInfo
		if err := json.Unmarshal(e.Value(), &r); err != nil || r.ID != e.Key() {
			p.log.Warn("member key with a bad value passed over", slog.String("key", e.Key()))
			return false
		}
		if _, ok := members[r.ID]; ok {
			return false
		}
		members[r.ID] = &cluster.Member{Id: r.ID, Host: r.Host, Port: int32(r.Port), Kinds: r.Kinds}
		return true
	default: // deleted, purged or expired
		if _, ok := members[e.Key()]; !ok {
			return false
		}
		delete(members, e.Key())
		return true
	}
}

// publish publishes the members as a protoactor ClusterTopology on the
// actor system's event stream, where the identity lookup, the PID cache
// (it drops the PIDs of members that left) and the remote (it closes the
// endpoints of members that left) take it. Called by one goroutine at a
// time (StartMember, then the watcher).
//
// It does not go through protoactor's MemberList.UpdateClusterTopology,
// which does the same and also adds every member that left to the
// remote's block list for good: at the pinned version the block list is
// read without its lock on every incoming connection (a data race each
// time a member leaves and another connects), and as every start of a
// member has a fresh id, blocking ids buys nothing. So the MemberList
// stays empty; nothing in Cairn reads it (gossip is off, see
// withoutGossip).
func (p *kvProvider) publish(members map[string]*cluster.Member) {
	list := make([]*cluster.Member, 0, len(members))
	for _, m := range members {
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Id < list[j].Id })
	ids := make([]string, len(list))
	for i, m := range list {
		ids[i] = m.Id
	}
	p.ids.Store(&ids)
	t := &cluster.ClusterTopology{Members: list}
	h := fnv.New64a()
	for _, m := range list {
		_, _ = h.Write([]byte(m.Id))
		_, _ = h.Write([]byte{0})
		if _, ok := p.published[m.Id]; !ok {
			t.Joined = append(t.Joined, m)
		}
	}
	t.TopologyHash = h.Sum64()
	for id, m := range p.published {
		if _, ok := members[id]; !ok {
			t.Left = append(t.Left, m)
		}
	}
	p.published = maps.Clone(members)
	es := p.cluster.ActorSystem.EventStream
	for _, m := range t.Left {
		es.Publish(&remote.EndpointTerminatedEvent{Address: m.Address()})
	}
	es.Publish(t)
	p.log.Info("cluster topology", slog.Int("members", len(list)), slog.Int("joined", len(t.Joined)), slog.Int("left", len(t.Left)))
}

// heard is the last put of a member's key that this member saw (through
// the watcher or a read): its revision, and when it was seen (this
// member's clock).
type heard struct {
	rev uint64
	at  time.Time
}

// watch feeds the member list every change of the set of members. It
// does not trust the watcher and the server's expiry alone: after a NATS
// node dies a watcher can stall without an error until a new consumer can
// be made (which takes a meta leader), and a key can outlive its TTL. So
// every half heartbeat it also reads every member's key (poll: a direct
// get, answered by any replica with no consumer or leader needed), and it
// watches afresh when its own acknowledged heartbeats stop coming back
// through the watcher.
func (p *kvProvider) watch(w jetstream.KeyWatcher, members map[string]*cluster.Member) {
	defer p.wg.Done()
	defer func() { _ = w.Stop() }()
	tick := time.NewTicker(p.cfg.Heartbeat)
	defer tick.Stop()
	last := map[string]heard{}
	start := time.Now()
	for id := range members {
		last[id] = heard{at: start}
	}
	// dropped holds the members dropped for silence, at the revision
	// they were dropped: a later put brings one back, an older one not.
	dropped := map[string]uint64{}
	var own uint64 // this member's highest revision the watcher delivered
	ps := &pollState{healthySince: start}
	poll := time.NewTicker(p.cfg.Heartbeat / 2)
	defer poll.Stop()
	updates := w.Updates()
	for {
		select {
		case <-p.stop:
			return
		case <-p.fenced:
			return
		case e, ok := <-updates:
			if !ok {
				updates = nil // closed: watch afresh on the next tick
				continue
			}
			if e == nil {
				continue
			}
			if e.Operation() == jetstream.KeyValuePut {
				if rev, ok := dropped[e.Key()]; ok && e.Revision() <= rev {
					continue
				}
				delete(dropped, e.Key())
				last[e.Key()] = heard{rev: e.Revision(), at: time.Now()}
				if e.Key() == p.key {
					own = max(own, e.Revision())
				}
			} else {
				delete(last, e.Key())
			}
			if !p.apply(members, e) {
				continue
			}
			if _, ok := members[p.key]; !ok {
				p.fence(errors.New("its member key was removed (it expired or was deleted)"))
				return
			}
			p.publish(members)
		case <-poll.C:
			if p.poll(members, last, dropped, ps) {
				p.publish(members)
			}
		case <-tick.C:
			changed := false
			p.ackMu.Lock()
			rev, sent := p.ackRev, p.ackSent
			p.ackMu.Unlock()
			if updates == nil || (rev > own && time.Since(sent) > 2*p.cfg.Heartbeat) {
				p.log.Warn("the membership watcher stopped delivering (this member's own heartbeat did not come back through it); watching the bucket afresh",
					slog.Uint64("heartbeat_revision", rev), slog.Uint64("delivered_revision", own))
				ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Heartbeat)
				nw, fresh, err := p.sync(ctx)
				cancel()
				if err != nil {
					p.log.Warn("watching the membership bucket afresh failed; trying again", slog.String("err", err.Error()))
				} else {
					_ = w.Stop()
					w, updates, own = nw, nw.Updates(), rev
					if _, ok := fresh[p.key]; !ok {
						p.fence(errors.New("its member key is gone from the bucket"))
						return
					}
					now := time.Now()
					for id, m := range fresh {
						if _, gone := dropped[id]; gone {
							continue // its key still holds the silent revision
						}
						if _, ok := members[id]; !ok {
							members[id] = m
							last[id] = heard{at: now}
							changed = true
						}
					}
					for id := range members {
						if _, ok := fresh[id]; !ok {
							delete(members, id)
							delete(last, id)
							changed = true
						}
					}
				}
			}
			if changed {
				p.publish(members)
			}
		}
	}
}

// pollState is what poll keeps between two calls.
type pollState struct {
	healthy      bool      // whether the bucket took its heartbeats at the last poll
	healthySince time.Time // since when it has read fresh
}

// poll reads every member's key and drops from members those whose key
// is gone, or went TTL without a put while this member read fresh (the
// bucket took its heartbeat within two heartbeats, and the replica read
// holds that heartbeat) and had for at least
// two heartbeats since it last came back to fresh (after a leader
// election of the bucket, nobody's puts went through for a while: the
// others, who try again every quarter heartbeat while they fail, get that
// long to put again). It deletes a dropped member's key
// at the revision it last saw, so that the member, should it be alive
// (paused), finds its heartbeat refused and fences itself. It reports
// whether members changed.
func (p *kvProvider) poll(members map[string]*cluster.Member, last map[string]heard, dropped map[string]uint64, ps *pollState) bool {
	// Each read on its own deadline: a direct get answered by a replica
	// that is paused hangs until it, and must not use up the others'.
	get := func(key string) (jetstream.KeyValueEntry, error) {
		ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Heartbeat/4)
		defer cancel()
		return p.kv.Get(ctx, key)
	}
	// Healthy: the bucket took this member's heartbeat within two
	// heartbeats. After it was not (an election of the bucket's leader,
	// or a pause of this member), the others get two heartbeats from then
	// to be heard again.
	p.ackMu.Lock()
	ackRev, ackSent := p.ackRev, p.ackSent
	p.ackMu.Unlock()
	healthy := time.Since(ackSent) <= 2*p.cfg.Heartbeat
	if healthy && !ps.healthy {
		ps.healthySince = time.Now()
	}
	ps.healthy = healthy
	if !healthy || time.Since(ps.healthySince) < 2*p.cfg.Heartbeat {
		return false
	}
	// And the replica that answers holds that heartbeat (it is not behind
	// what the others would be judged on); else this round judges nobody.
	// A revision merely seen to change is not enough: a member resumed
	// from a pause reads its last put from before.
	if e, err := get(p.key); err != nil || e.Revision() < ackRev {
		return false
	}
	changed := false
	for id := range members {
		if id == p.key {
			continue
		}
		e, err := get(id)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			p.log.Info("member key gone (expired or deleted) before the watcher said so; dropping the member", slog.String("dropped", id))
			delete(members, id)
			delete(last, id)
			changed = true
			continue
		case err == nil && e.Revision() != last[id].rev:
			last[id] = heard{rev: e.Revision(), at: time.Now()}
		}
		h := last[id]
		if time.Since(h.at) <= p.cfg.TTL {
			continue
		}
		p.log.Warn("member sent no heartbeat within the TTL; dropping it and deleting its key",
			slog.String("dropped", id), slog.Duration("silent", time.Since(h.at).Round(time.Millisecond)))
		delete(members, id)
		delete(last, id)
		dropped[id] = h.rev
		changed = true
		if h.rev != 0 {
			// Refused if it wrote since. Failed otherwise, the member,
			// should it be alive, finds its key and goes on, and is
			// taken back when it next puts.
			ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Heartbeat)
			if err := p.kv.Delete(ctx, id, jetstream.LastRevision(h.rev)); err != nil {
				p.log.Warn("could not delete a dropped member's key", slog.String("dropped", id), slog.String("err", err.Error()))
			}
			cancel()
		}
	}
	return changed
}

// heartbeat rewrites the member's key every Heartbeat and fences the
// member when its hard lease ends or its key is gone.
func (p *kvProvider) heartbeat() {
	defer p.wg.Done()
	t := time.NewTimer(p.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.fenced:
			return
		case <-t.C:
		}
		if !p.leaseValid() {
			p.fence(fmt.Errorf("no heartbeat was acknowledged within its lease (key TTL %v)", p.cfg.KeyTTL))
			return
		}
		next := p.cfg.Heartbeat
		if time.Now().UnixNano() >= p.pause.Load() {
			if err := p.beat(p.cfg.Heartbeat); err != nil && !errors.Is(err, ErrFenced) {
				p.log.Warn("heartbeat failed", slog.String("member", p.key), slog.String("err", err.Error()))
				// Again soon: the bucket may have a new leader any
				// moment, and the others give this member two
				// heartbeats from then to be heard.
				next = p.cfg.Heartbeat / 4
			}
		}
		t.Reset(next)
	}
}

// beat rewrites the member's key once, waiting at most timeout. Refused
// (the key's revision moved: it expired or the others dropped this
// member), it fences the member and returns ErrFenced.
func (p *kvProvider) beat(timeout time.Duration) error {
	p.hbMu.Lock()
	defer p.hbMu.Unlock()
	if p.err() != nil {
		return p.err()
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	sent := time.Now()
	ack, err := p.cfg.JetStream.PublishMsg(ctx, &nats.Msg{Subject: p.subject, Data: p.value},
		jetstream.WithExpectLastSequencePerSubject(p.rev), jetstream.WithMsgTTL(p.cfg.KeyTTL))
	switch {
	case err == nil:
		p.rev = ack.Sequence
		p.acked(ack.Sequence, sent)
		return nil
	case isWrongLastSequence(err):
		// A heartbeat that timed out here may have been stored all the
		// same: then the key's last message, as its leader holds it, is
		// this member's own put, past the revision it knew.
		if rev, ok := p.ownLastPut(timeout); ok && rev > p.rev {
			p.rev = rev
			return nil
		}
		p.fence(errors.New("its member key expired or was deleted (the others dropped it): heartbeat refused"))
		return p.err()
	default:
		return err
	}
}

// ownLastPut reads the last message of this member's key from the
// bucket's stream leader ($JS.API.STREAM.MSG.GET: a direct get may come
// from a replica behind) and returns its revision when it is a put of
// this member's record.
func (p *kvProvider) ownLastPut(timeout time.Duration) (uint64, bool) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": p.subject})
	// Right after an election of the bucket's leader (when a heartbeat
	// that seemed lost is found stored) the leader may not answer at
	// once: a few tries.
	var m *nats.Msg
	var err error
	for try := 0; try < 3; try++ {
		if m, err = p.cfg.JetStream.Conn().Request("$JS.API.STREAM.MSG.GET.KV_"+p.cfg.Bucket, req, timeout); err == nil {
			break
		}
	}
	if err != nil {
		p.log.Warn("could not read this member's key at the bucket's leader", slog.String("err", err.Error()))
		return 0, false
	}
	var resp struct {
		Message *struct {
			Seq    uint64 `json:"seq"`
			Header []byte `json:"hdrs"`
			Data   []byte `json:"data"`
		} `json:"message"`
	}
	if json.Unmarshal(m.Data, &resp) != nil || resp.Message == nil {
		return 0, false
	}
	if bytes.Contains(resp.Message.Header, []byte("KV-Operation")) || !bytes.Equal(resp.Message.Data, p.value) {
		return 0, false // a delete or purge marker, or another record
	}
	return resp.Message.Seq, true
}

// check is Member.Check's membership part: nil while the soft lease runs;
// past it, a heartbeat at once decides (see KVConfig).
func (p *kvProvider) check() error {
	if err := p.err(); err != nil {
		return err
	}
	if p.softLeaseValid() {
		return nil
	}
	if !p.leaseValid() {
		p.fence(fmt.Errorf("no heartbeat was acknowledged within its lease (key TTL %v)", p.cfg.KeyTTL))
		return p.err()
	}
	if err := p.beat(checkBeatTimeout); errors.Is(err, ErrFenced) {
		return err
	}
	return nil // acknowledged, or the bucket answers nobody: write on
}

// checkBeatTimeout bounds Check's heartbeat.
const checkBeatTimeout = 500 * time.Millisecond

// fence ends this member's membership for good.
func (p *kvProvider) fence(why error) {
	p.fenceOnce.Do(func() {
		err := fmt.Errorf("%w: %w", ErrFenced, why)
		p.fenceErr.Store(&err)
		p.lookup.fence()
		p.log.Error("member fenced itself: its grains stop and it takes no more work (an engine then joins again as a fresh member)",
			slog.String("member", p.key), slog.String("why", why.Error()))
		close(p.fenced)
	})
}

// err returns why the member fenced itself, nil while it has not.
func (p *kvProvider) err() error {
	if e := p.fenceErr.Load(); e != nil {
		return *e
	}
	return nil
}

// Shutdown stops the heartbeat and the watcher; graceful, it deletes the
// member's key so that the others drop it at once.
func (p *kvProvider) Shutdown(graceful bool) error {
	p.stopOnce.Do(func() { close(p.stop) })
	p.wg.Wait()
	if !graceful || p.kv == nil || p.err() != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.kv.Delete(ctx, p.key, jetstream.LastRevision(p.rev))
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongLastSequence(err) {
		// The revision moved: a heartbeat that timed out here was stored
		// after all (delete at its revision), or the others dropped this
		// member and deleted its key (nothing left to do).
		rev, ok := p.ownLastPut(time.Second)
		if !ok {
			p.log.Info("left the cluster (its key was already gone)", slog.String("member", p.key))
			return nil
		}
		err = p.kv.Delete(ctx, p.key, jetstream.LastRevision(rev))
	}
	if err != nil {
		return fmt.Errorf("membership: delete member key %s: %w", p.key, err)
	}
	p.log.Info("left the cluster", slog.String("member", p.key))
	return nil
}

// isWrongLastSequence reports whether err is JetStream refusing a write
// for its expected last sequence.
func isWrongLastSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
