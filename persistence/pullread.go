package persistence

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// pullReader reads the stream in order, as nats.go's ordered consumer
// does, but pulls from its consumer itself on a plain subscription: an
// ephemeral consumer (no acks, in memory, one replica) from the next
// sequence wanted, pull requests of half its buffer whenever less than
// half of it is asked for, with an idle heartbeat, and the stream and
// consumer sequences read off each message's reply subject. A gap in the
// consumer sequence, a missed heartbeat (two in a row), a status that
// ends the consumer (deleted, leadership changed), or the connection's
// reconnect (its pull requests and messages in flight are lost; the
// consumer may have been on a node that died) makes a new consumer from
// the sequence after the last one delivered, so every sequence is
// delivered at most once and in order.
//
// It exists for the cost: nats.go's iterator made a timer, a closure and
// the message's metadata on every Next (about five allocations and a
// four-way select per message the projections follow).
type pullReader struct {
	s        *Store
	nc       *nats.Conn
	subjects []string
	prefix   string // consumer names: prefix and a serial
	serial   int
	next     uint64 // the stream sequence wanted next
	dseq     uint64 // the consumer sequence last delivered
	name     string // the consumer's name ("" when there is none)
	inbox    string
	asked    int // messages asked for and not delivered or ended yet
	resets   int // resets in a row without a message between them

	mu          sync.Mutex
	sub         *nats.Subscription
	stopped     bool
	reconnected bool // the connection reconnected since the consumer was made
}

// pullKickHeader marks the message a reader sends itself to wake its Next
// after a reconnect.
const pullKickHeader = "Cairn-Reader-Kick"

// watchReconnects makes a new consumer after each reconnect, at once
// rather than after two missed heartbeats (nats.go's ordered consumer
// does the same). It returns the function that stops watching.
func (r *pullReader) watchReconnects() (stop func()) {
	ch := r.nc.StatusChanged(nats.CONNECTED)
	go func() {
		for range ch {
			r.kick()
		}
	}()
	return func() { r.nc.RemoveStatusListener(ch) }
}

// kick marks the consumer as one to make again and wakes a Next waiting
// for a message with one sent to the reader's own inbox.
func (r *pullReader) kick() {
	r.mu.Lock()
	r.reconnected = true
	inbox := r.inbox
	r.mu.Unlock()
	if inbox != "" {
		m := nats.NewMsg(inbox)
		m.Header.Set(pullKickHeader, "reconnected")
		_ = r.nc.PublishMsg(m)
	}
}

// pullHeartbeat is the idle heartbeat a pull request asks for: two missed
// in a row make a new consumer.
const pullHeartbeat = readPullExpiry / 2

// pullResets is how many resets in a row a reader tries (each after a
// pause, 100 ms doubling) before it gives up with ErrUnavailable.
const pullResets = 5

func (s *Store) newPullReader(subjects []string, fromSeq uint64) *pullReader {
	return &pullReader{s: s, nc: s.js.Conn(), subjects: subjects, prefix: nuid.Next(), next: fromSeq}
}

// start makes the reader's consumer and subscription from r.next on.
func (r *pullReader) start(ctx context.Context) error {
	r.serial++
	cfg := jetstream.ConsumerConfig{
		Name:              r.prefix + "_" + strconv.Itoa(r.serial),
		DeliverPolicy:     jetstream.DeliverByStartSequencePolicy,
		OptStartSeq:       r.next,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: 5 * time.Minute,
		Replicas:          1,
		MemoryStorage:     true,
	}
	if len(r.subjects) == 1 {
		cfg.FilterSubject = r.subjects[0]
	} else {
		cfg.FilterSubjects = r.subjects
	}
	cctx, cancel := withTimeout(ctx, r.s.cfg.OpTimeout)
	_, err := r.s.stream.CreateConsumer(cctx, cfg)
	cancel()
	if err != nil {
		return translate(err)
	}
	inbox := r.nc.NewInbox()
	sub, err := r.nc.SubscribeSync(inbox)
	if err != nil {
		r.drop(cfg.Name)
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		_ = sub.Unsubscribe()
		r.drop(cfg.Name)
		return errPullStopped
	}
	r.sub, r.inbox, r.reconnected = sub, inbox, false
	r.mu.Unlock()
	r.name, r.dseq, r.asked = cfg.Name, 0, 0
	return nil
}

// drop deletes consumer name without waiting for the answer (one that is
// not deleted goes after InactiveThreshold).
func (r *pullReader) drop(name string) {
	_ = r.nc.Publish("$JS.API.CONSUMER.DELETE."+r.s.cfg.Stream+"."+name, nil)
}

// close gives the subscription and the consumer up.
func (r *pullReader) close() {
	r.mu.Lock()
	sub := r.sub
	r.sub = nil
	r.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	if r.name != "" {
		r.drop(r.name)
		r.name = ""
	}
}

// stop ends a Next in progress and every later one (any goroutine).
func (r *pullReader) stop() {
	r.mu.Lock()
	r.stopped = true
	if r.sub != nil {
		_ = r.sub.Unsubscribe()
	}
	r.mu.Unlock()
}

// reset makes a new consumer from the sequence after the last delivered.
func (r *pullReader) reset(ctx context.Context, why error) error {
	if pullResetHook != nil {
		pullResetHook(why)
	}
	r.close()
	for {
		r.resets++
		if r.resets > pullResets {
			return fmt.Errorf("%w: %d resets in a row, the last for: %w", ErrUnavailable, pullResets, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(1<<(r.resets-1)) * 100 * time.Millisecond):
		}
		err := r.start(ctx)
		if err == nil || ctx.Err() != nil || errors.Is(err, errPullStopped) {
			return err
		}
		why = err
	}
}

// pull asks for more when less than half of pullMessages is asked for.
func (r *pullReader) pull() error {
	if r.asked >= pullMessages/2 {
		return nil
	}
	n := pullMessages / 2
	req := fmt.Appendf(make([]byte, 0, 96), `{"batch":%d,"max_bytes":%d,"expires":%d,"idle_heartbeat":%d}`,
		n, pullBytes(r.nc.MaxPayload()), readPullExpiry.Nanoseconds(), pullHeartbeat.Nanoseconds())
	if err := r.nc.PublishRequest("$JS.API.CONSUMER.MSG.NEXT."+r.s.cfg.Stream+"."+r.name, r.inbox, req); err != nil {
		return err
	}
	r.asked += n
	return nil
}

// errPullGap, errPullHeartbeat: why a reader made a new consumer.
var (
	errPullGap         = errors.New("a gap in the consumer's sequence")
	errPullHeartbeat   = errors.New("no heartbeat")
	errPullReconnected = errors.New("the connection reconnected")
)

// pullResetHook, when set (tests), is called with the reason of each
// reset.
var pullResetHook func(why error)

// Next returns the next message in stream order. Errors: ctx's error once
// ctx ended, errPullStopped after stop, ErrMalformed for a message that
// is no JetStream message, ErrUnavailable when no consumer could be made
// again or the connection closed.
func (r *pullReader) Next(ctx context.Context) (storedMsg, error) {
	for {
		r.mu.Lock()
		sub, stopped, reconnected := r.sub, r.stopped, r.reconnected
		r.mu.Unlock()
		if !stopped && sub != nil && reconnected {
			if err := r.reset(ctx, errPullReconnected); err != nil {
				return storedMsg{}, err
			}
			continue
		}
		if stopped {
			if ctx.Err() != nil {
				return storedMsg{}, ctx.Err()
			}
			return storedMsg{}, errPullStopped
		}
		if sub == nil {
			if err := r.reset(ctx, errPullHeartbeat); err != nil {
				return storedMsg{}, err
			}
			continue
		}
		if err := r.pull(); err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) {
				return storedMsg{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			if err := r.reset(ctx, err); err != nil {
				return storedMsg{}, err
			}
			continue
		}
		m, err := sub.NextMsg(2 * pullHeartbeat)
		switch {
		case err == nil:
		case errors.Is(err, nats.ErrTimeout):
			if err := r.reset(ctx, errPullHeartbeat); err != nil {
				return storedMsg{}, err
			}
			continue
		case errors.Is(err, nats.ErrConnectionClosed):
			return storedMsg{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		default:
			// Unsubscribed: stopped (checked on the next turn), or the
			// subscription failed (a slow consumer).
			r.mu.Lock()
			stopped = r.stopped
			r.mu.Unlock()
			if !stopped {
				if err := r.reset(ctx, err); err != nil {
					return storedMsg{}, err
				}
			}
			continue
		}
		if len(m.Data) == 0 && m.Header != nil {
			if m.Header.Get(pullKickHeader) != "" && m.Reply == "" {
				continue // the reset is on the next turn
			}
			if st := m.Header.Get("Status"); st != "" {
				if err := r.status(st, m.Header); err != nil {
					if err := r.reset(ctx, err); err != nil {
						return storedMsg{}, err
					}
				}
				continue
			}
		}
		sseq, dseq, ts, pending, ok := parseAckReply(m.Reply)
		if !ok {
			// Not a JetStream message: the consumer is broken, not a graph.
			return storedMsg{}, fmt.Errorf("%w: not a JetStream message: reply %q", ErrMalformed, m.Reply)
		}
		r.asked = max(r.asked-1, 0)
		if dseq != r.dseq+1 || sseq < r.next {
			if err := r.reset(ctx, errPullGap); err != nil {
				return storedMsg{}, err
			}
			continue
		}
		r.dseq, r.next, r.resets = dseq, sseq+1, 0
		return storedMsg{Subject: m.Subject, Seq: sseq, Time: time.Unix(0, ts), Data: m.Data, Header: m.Header, Pending: pending}, nil
	}
}

// errPullStopped: Next after stop.
var errPullStopped = errors.New("reader stopped")

// status handles a status message: a heartbeat or a pull request that
// ended (nil), or anything that ends the consumer (the error).
func (r *pullReader) status(st string, h nats.Header) error {
	switch st {
	case "100": // idle heartbeat
		return nil
	case "404", "408": // no messages; request expired
		r.ended(h)
		return nil
	case "409":
		desc := h.Get("Description")
		if strings.Contains(desc, "MaxBytes") || strings.Contains(desc, "Batch Completed") {
			r.ended(h)
			return nil
		}
		return fmt.Errorf("status 409 %s", desc)
	}
	return fmt.Errorf("status %s %s", st, h.Get("Description"))
}

// ended takes what a pull request that ended left undelivered off what is
// asked for.
func (r *pullReader) ended(h nats.Header) {
	n, err := strconv.Atoi(h.Get("Nats-Pending-Messages"))
	if err != nil {
		// Unknown: ask again.
		r.asked = 0
		return
	}
	r.asked = max(r.asked-n, 0)
}

// parseAckReply reads a JetStream message's reply subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>,
// or with <domain>.<account hash> after $JS.ACK and a token at the end.
func parseAckReply(reply string) (sseq, dseq uint64, ts int64, pending uint64, ok bool) {
	rest, found := strings.CutPrefix(reply, "$JS.ACK.")
	if !found {
		return 0, 0, 0, 0, false
	}
	var tok [12]string
	n := 0
	for {
		if n == len(tok) {
			return 0, 0, 0, 0, false
		}
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
		n++
	}
	var f []string // delivered, stream seq, consumer seq, time, pending
	switch {
	case n == 7:
		f = tok[2:7]
	case n >= 9:
		f = tok[4:9]
	default:
		return 0, 0, 0, 0, false
	}
	var err error
	if sseq, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, 0, 0, false
	}
	if dseq, err = strconv.ParseUint(f[2], 10, 64); err != nil {
		return 0, 0, 0, 0, false
	}
	if ts, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return 0, 0, 0, 0, false
	}
	if pending, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return 0, 0, 0, 0, false
	}
	return sseq, dseq, ts, pending, true
}
