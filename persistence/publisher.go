package persistence

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publisher publishes messages to JetStream on core NATS and matches their
// acknowledgements, for Append. It is what jetstream.PublishMsgAsync does,
// less what an append pays for and does not use: one wildcard reply
// subscription per store (made on the first publish), a pending map keyed
// by a counter, and the PubAck read by hand. A PubAck
// ({"stream":…,"seq":N} with "duplicate":true on a de-duplicated message)
// is scanned without encoding/json; anything else (the error form
// {"error":{"code":…,"err_code":…,"description":…}}, or a shape the scan
// does not know) goes through encoding/json, so an API error reaches
// translate as the *jetstream.APIError that nats.go would give.
//
// Unlike PublishMsgAsync it does not republish on "no responders" (a
// stream leader being elected): that comes back as ErrUnavailable at once,
// and the caller's retry (the grain's back-off) publishes again.
type publisher struct {
	nc *nats.Conn
	// stream is the stream's name, for its leader-election advisories.
	stream string

	mu      sync.Mutex
	prefix  string // reply subject prefix, "<inbox>."; "" until subscribed
	sub     *nats.Subscription
	pending map[uint64]*pendingAck
	// elected is closed, and replaced, when the stream elects a leader
	// (its advisory, on electedSub).
	elected    chan struct{}
	electedSub *nats.Subscription

	// async counts the pending entries of publishAsync (under mu); while
	// there are any, sweeping is true and sweep times them out.
	async    int
	sweeping bool

	next atomic.Uint64
	// acks holds pendingAck entries that no callback answers any more, for
	// reuse.
	acks sync.Pool
}

// pendingAck is one publish waiting for its acknowledgement; ch has room
// for it, so the subscription's callback never blocks. One of
// publishAsync has cb instead, called with the answer, and its deadline
// (Unix nanoseconds).
type pendingAck struct {
	ch       chan ackResult
	cb       func(ackResult)
	deadline int64
}

// deliver answers pa's publish.
func (pa *pendingAck) deliver(r ackResult) {
	if pa.cb != nil {
		pa.cb(r)
		return
	}
	pa.ch <- r
}

type ackResult struct {
	seq uint64
	dup bool
	err error
}

func newPublisher(nc *nats.Conn, stream string) *publisher {
	p := &publisher{nc: nc, stream: stream, pending: make(map[uint64]*pendingAck), elected: make(chan struct{})}
	p.acks.New = func() any { return &pendingAck{ch: make(chan ackResult, 1)} }
	return p
}

// subscribe makes the reply subscription once; it is kept for the
// connection's life (nats.go renews it across reconnects). A failure is
// returned and tried again on the next publish.
func (p *publisher) subscribe() (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.prefix != "" {
		return p.prefix, nil
	}
	prefix := p.nc.NewInbox() + "."
	sub, err := p.nc.Subscribe(prefix+"*", func(m *nats.Msg) { p.handle(m, len(prefix)) })
	if err != nil {
		return "", err
	}
	// The callback only hands an answer over: no limit on what waits for it.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return "", err
	}
	p.prefix, p.sub = prefix, sub
	p.watchLeaderLocked()
	// An acknowledgement sent while the connection was down is lost: on
	// every reconnect the publishes waiting then fail at once with
	// nats.ErrDisconnected (ErrUnavailable; the caller retries with the
	// same transaction id), as nats.go's own async publisher does, rather
	// than each waiting out its whole time.
	status := p.nc.StatusChanged(nats.RECONNECTING, nats.CLOSED)
	go p.failOnReconnect(status)
	return prefix, nil
}

// leaderElectedSubject is the prefix of the subject of JetStream's
// advisory that a stream (the subject's last token) elected a leader.
const leaderElectedSubject = "$JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED."

// errLeaderElected answers the publishes pending when the stream elected
// a leader.
var errLeaderElected = fmt.Errorf("the stream elected a new leader while the append waited: %w", ErrNoLeader)

// leaderElected fails the pending publishes with errLeaderElected and
// wakes the callers waiting on the channel that leaderChange returned.
// A publish that the new leader stored all the same is found by the
// caller's retry (the same transaction id: de-duplicated, or its
// expected sequence refused and the stored message found, storedAfter).
func (p *publisher) leaderElected() {
	p.mu.Lock()
	pending := p.pending
	p.pending = make(map[uint64]*pendingAck, len(pending))
	p.async = 0
	close(p.elected)
	p.elected = make(chan struct{})
	p.mu.Unlock()
	for _, pa := range pending {
		pa.deliver(ackResult{err: errLeaderElected})
	}
}

// watchLeaderLocked subscribes to the stream's leader-elected advisories
// once (p.mu held). A stream leader that died never answers the
// publishes it got: when a new one is elected, they fail at once
// (ErrNoLeader), and the callers waiting for a leader hear of it
// (leaderElected), so that every append goes to the new leader within a
// round trip of its advisory instead of at the end of a time-out or
// back-off. Without the advisory (no permission for it) appends fall
// back on those.
func (p *publisher) watchLeaderLocked() {
	if p.electedSub != nil {
		return
	}
	if esub, err := p.nc.Subscribe(leaderElectedSubject+p.stream, func(*nats.Msg) { p.leaderElected() }); err == nil {
		p.electedSub = esub
	}
}

// leaderChange returns a channel closed when the stream next elects a
// leader. watch subscribes to the advisories first, if no publish did;
// without it, the channel is nil (never ready) until one did.
func (p *publisher) leaderChange(watch bool) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if watch {
		p.watchLeaderLocked()
	}
	if p.electedSub == nil {
		return nil
	}
	return p.elected
}

// failOnReconnect answers every pending publish with nats.ErrDisconnected
// each time the connection starts reconnecting, until it closes.
func (p *publisher) failOnReconnect(status chan nats.Status) {
	for st := range status {
		p.mu.Lock()
		pending := p.pending
		p.pending = make(map[uint64]*pendingAck, len(pending))
		p.async = 0
		p.mu.Unlock()
		for _, pa := range pending {
			pa.deliver(ackResult{err: nats.ErrDisconnected})
		}
		if st == nats.CLOSED {
			p.nc.RemoveStatusListener(status)
			return
		}
	}
}

// publish sends out's message with a reply subject of its own and waits
// for the stream's acknowledgement, ctx or expired (nil: no limit but
// ctx). It sets the message's Reply. Errors (for translate): the *jetstream.APIError the
// stream answered with; errAckTimeout when expired closed first;
// nats.ErrNoResponders when no stream took the message; errInvalidAck for
// an answer that is no PubAck; the nats.go error of a publish that could
// not be sent; ctx's error when ctx ended first.
func (p *publisher) publish(ctx context.Context, expired <-chan struct{}, out *outTx) (seq uint64, dup bool, err error) {
	msg := &out.msg
	p.mu.Lock()
	prefix := p.prefix
	p.mu.Unlock()
	if prefix == "" {
		if prefix, err = p.subscribe(); err != nil {
			return 0, false, err
		}
	}
	id := p.next.Add(1)
	out.replyTo(prefix, id)
	pa := p.acks.Get().(*pendingAck)
	p.mu.Lock()
	p.pending[id] = pa
	p.mu.Unlock()
	if err := p.nc.PublishMsg(msg); err != nil {
		if p.forget(id) {
			p.acks.Put(pa)
		}
		return 0, false, err
	}
	select {
	case r := <-pa.ch:
		p.acks.Put(pa)
		return r.seq, r.dup, r.err
	case <-ctx.Done():
		err = ctx.Err()
	case <-expired:
		err = errAckTimeout
	}
	if p.forget(id) {
		// Nobody will answer on pa now: it can be used again.
		p.acks.Put(pa)
	}
	return 0, false, err
}

// publishAsync is publish without the wait: cb gets the answer, once, on
// the reply subscription's goroutine (it must not block), or errAckTimeout
// from sweep once deadline passed, or the error of a publish that could
// not be sent on the caller's goroutine. out may be used again once it
// returns.
func (p *publisher) publishAsync(deadline time.Time, out *outTx, cb func(ackResult)) {
	p.mu.Lock()
	prefix := p.prefix
	p.mu.Unlock()
	if prefix == "" {
		var err error
		if prefix, err = p.subscribe(); err != nil {
			cb(ackResult{err: err})
			return
		}
	}
	id := p.next.Add(1)
	out.replyTo(prefix, id)
	pa := &pendingAck{cb: cb, deadline: deadline.UnixNano()}
	p.mu.Lock()
	p.pending[id] = pa
	p.async++
	if !p.sweeping {
		p.sweeping = true
		go p.sweep()
	}
	p.mu.Unlock()
	if err := p.nc.PublishMsg(&out.msg); err != nil {
		if p.forget(id) {
			cb(ackResult{err: err})
		}
	}
}

// sweep answers publishAsync's entries whose deadline passed with
// errAckTimeout, every appendTick, until none is pending.
func (p *publisher) sweep() {
	t := time.NewTicker(appendTick)
	defer t.Stop()
	var late []*pendingAck
	for range t.C {
		now := time.Now().UnixNano()
		late = late[:0]
		p.mu.Lock()
		for id, pa := range p.pending {
			if pa.cb != nil && pa.deadline <= now {
				delete(p.pending, id)
				p.async--
				late = append(late, pa)
			}
		}
		done := p.async == 0
		if done {
			p.sweeping = false
		}
		p.mu.Unlock()
		for _, pa := range late {
			pa.cb(ackResult{err: errAckTimeout})
		}
		if done {
			return
		}
	}
}

// errAckTimeout: a publish's wait (AppendWithin's within) ran out.
var errAckTimeout = fmt.Errorf("no acknowledgement in time: %w", context.DeadlineExceeded)

// forget removes publish id's entry; false when the callback took it
// first (and answers, or answered, on its channel).
func (p *publisher) forget(id uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	pa, ok := p.pending[id]
	if !ok {
		return false
	}
	delete(p.pending, id)
	if pa.cb != nil {
		p.async--
	}
	return true
}

// handle is the reply subscription's callback; the subjects it gets are
// the reply prefix (prefixLen bytes) and a publish's counter.
func (p *publisher) handle(m *nats.Msg, prefixLen int) {
	id, err := strconv.ParseUint(m.Subject[min(prefixLen, len(m.Subject)):], 10, 64)
	if err != nil {
		return
	}
	p.mu.Lock()
	pa := p.pending[id]
	delete(p.pending, id)
	if pa != nil && pa.cb != nil {
		p.async--
	}
	p.mu.Unlock()
	if pa == nil {
		return // its publish gave up waiting
	}
	var r ackResult
	switch st := m.Header.Get("Status"); {
	case len(m.Data) == 0 && st == "503":
		// No stream took the message (or none of its servers is up);
		// translate makes it ErrUnavailable.
		r.err = fmt.Errorf("status 503 %s: %w", m.Header.Get("Description"), nats.ErrNoResponders)
	case len(m.Data) == 0 && st != "":
		r.err = fmt.Errorf("%w: status %s %s", errInvalidAck, st, m.Header.Get("Description"))
	default:
		r.seq, r.dup, r.err = parsePubAck(m.Data)
	}
	pa.deliver(r)
}

// errInvalidAck: JetStream answered a publish with something that is not
// a PubAck (translate makes it ErrUnavailable, as it did nats.go's
// ErrInvalidJSAck).
var errInvalidAck = errors.New("invalid JetStream publish acknowledgement")

// parsePubAck reads JetStream's answer to a publish: the stream sequence and
// whether the message was a duplicate, or the API error.
func parsePubAck(data []byte) (seq uint64, dup bool, err error) {
	if seq, dup, ok := scanPubAck(data); ok {
		return seq, dup, nil
	}
	var pa struct {
		Error     *jetstream.APIError `json:"error"`
		Stream    string              `json:"stream"`
		Seq       uint64              `json:"seq"`
		Duplicate bool                `json:"duplicate"`
	}
	if err := json.Unmarshal(data, &pa); err != nil {
		return 0, false, fmt.Errorf("%w: %w", errInvalidAck, err)
	}
	if pa.Error != nil {
		return 0, false, pa.Error
	}
	if pa.Stream == "" {
		return 0, false, fmt.Errorf("%w: %.200q", errInvalidAck, data)
	}
	return pa.Seq, pa.Duplicate, nil
}

// scanPubAck reads the PubAck that nats-server writes from its template,
// {"stream":"S","seq":N} (with "domain":"D" before "seq" on a server with a
// JetStream domain, and "duplicate": true after it for a de-duplicated
// message), without encoding/json. ok is false for anything else: an
// error, a field it does not know, or a different spelling (parsePubAck
// then decodes it with encoding/json).
func scanPubAck(data []byte) (seq uint64, dup bool, ok bool) {
	rest, ok := scanString(data, `{"stream":"`)
	if !ok {
		return 0, false, false
	}
	if r, found := scanString(rest, `,"domain":"`); found {
		rest = r
	}
	rest, found := bytes.CutPrefix(rest, []byte(`,"seq":`))
	if !found {
		return 0, false, false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, false, false
	}
	seq, err := strconv.ParseUint(string(rest[:n]), 10, 64)
	if err != nil {
		return 0, false, false
	}
	rest = rest[n:]
	for _, d := range []string{`,"duplicate": true`, `,"duplicate":true`} {
		if r, found := bytes.CutPrefix(rest, []byte(d)); found {
			dup, rest = true, r
			break
		}
	}
	if string(rest) != "}" {
		return 0, false, false
	}
	return seq, dup, true
}

// scanString cuts key (ending in the opening quote of a string value) and
// a non-empty value of printable ASCII without escapes off data; ok is
// false when data does not start so.
func scanString(data []byte, key string) (rest []byte, ok bool) {
	rest, found := bytes.CutPrefix(data, []byte(key))
	if !found {
		return nil, false
	}
	for i, c := range rest {
		switch {
		case c == '"' && i > 0:
			return rest[i+1:], true
		case c <= ' ' || c == '"' || c == '\\' || c >= 0x7f:
			// Printable ASCII only, as nats-server's names are.
			return nil, false
		}
	}
	return nil, false
}
