package persistence

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/deadline"
	"github.com/cairn-graph/cairn/internal/tracing"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Record is one stored transaction.
type Record struct {
	Seq  uint64    // stream sequence
	Time time.Time // when the stream stored it
	Tx   *cairnv1.Transaction
	// Header is the message's NATS header as stored, where the read
	// has it (Follow and Read of the stream; nil for an archived
	// transaction): a traced append's carries its span's W3C
	// traceparent (tracing.ParentHeader).
	Header nats.Header
}

// Store is the event store on a JetStream stream.
type Store struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    StoreConfig
	arc    archives // set up by WithObjects and WithArchiveSegments
	signer *Signer  // signs archive objects; set by WithSigning
	trust  *Keyring // checks signatures; set by WithSigning
	pub    *publisher
	wheel  *deadline.Wheel // AppendWithin's time-outs
	outs   sync.Pool       // *outTx: what an append sends, used again by the next
	own    *ownAppends     // the latest appends given a Sealed, for Follow
}

// OpenStore creates or updates the event-store stream and returns a Store
// over it. It returns an error wrapping ErrUnavailable when JetStream cannot
// be reached.
func OpenStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig, opts ...StoreOption) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	sc := jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "Cairn graph transactions, one subject per graph",
		Subjects:    []string{cfg.SubjectPrefix + ".>"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgSize:  cfg.MaxMsgSize,
		Duplicates:  cfg.DuplicateWindow,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		AllowDirect: true,
	}
	ctx, cancel := withTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	st, err := js.CreateOrUpdateStream(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("open stream %s: %w", cfg.Stream, translate(err))
	}
	return newStore(js, st, cfg, opts), nil
}

// LookupStore returns a Store over an existing event-store stream without
// creating or changing it (readers need no permission to manage streams).
// It returns an error wrapping ErrNotFound when the stream does not exist.
func LookupStore(ctx context.Context, js jetstream.JetStream, cfg StoreConfig, opts ...StoreOption) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	ctx, cancel := withTimeout(ctx, cfg.OpTimeout)
	defer cancel()
	st, err := js.Stream(ctx, cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Stream, translate(err))
	}
	return newStore(js, st, cfg, opts), nil
}

func newStore(js jetstream.JetStream, st jetstream.Stream, cfg StoreConfig, opts []StoreOption) *Store {
	s := &Store{js: js, stream: st, cfg: cfg, pub: newPublisher(js.Conn(), cfg.Stream), wheel: deadline.New(appendTick), own: newOwnAppends()}
	s.outs.New = func() any { return new(outTx) }
	s.arc.segTx, s.arc.segBytes = DefaultArchiveSegmentTransactions, DefaultArchiveSegmentBytes
	for _, o := range opts {
		o(s)
	}
	return s
}

// getMsg returns the stream's message at seq, or with subject set the
// first message of subject at or after seq. A direct get answers first:
// stored messages do not change, and a replica that has the one asked for
// (it holds a prefix of the stream) answers what the leader would, raw
// and fast (a 32 MiB transaction is 43 MiB of base64 in the leader's JSON
// answer). Only when the replica asked has none, or does not answer
// within directTry (it may be paused), the leader decides.
func (s *Store) getMsg(ctx context.Context, seq uint64, subject string) (*jetstream.RawStreamMsg, error) {
	var opts []jetstream.GetMsgOpt
	req := map[string]any{"seq": seq}
	if subject != "" {
		opts = append(opts, jetstream.WithGetMsgSubject(subject))
		req["next_by_subj"] = subject
	}
	dctx, cancel := context.WithTimeout(ctx, directTry)
	m, err := s.stream.GetMsg(dctx, seq, opts...)
	cancel()
	if err == nil {
		return m, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s.leaderMsg(ctx, req)
}

// directTry bounds getMsg's direct get.
const directTry = 2 * time.Second

// getLastMsg returns subject's last message. A direct get answers first,
// raw and fast, and the leader confirms it: nothing of subject after it
// (a small "not found" answer). A replica that lags answers an older
// message, and then, as when the replica has none or does not answer,
// the leader's own answer is taken.
func (s *Store) getLastMsg(ctx context.Context, subject string) (*jetstream.RawStreamMsg, error) {
	dctx, cancel := context.WithTimeout(ctx, directTry)
	m, err := s.stream.GetLastMsgForSubject(dctx, subject)
	cancel()
	if err == nil {
		_, lerr := s.leaderMsg(ctx, map[string]any{"seq": m.Sequence + 1, "next_by_subj": subject})
		if errors.Is(lerr, jetstream.ErrMsgNotFound) {
			return m, nil
		}
		if lerr != nil {
			return nil, lerr
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return s.leaderMsg(ctx, map[string]any{"last_by_subj": subject})
}

// leaderMsg gets one message from the stream's leader
// ($JS.API.STREAM.MSG.GET), never from a follower. nats.go's GetMsg and
// GetLastMsgForSubject use direct gets on a stream that allows them, and
// any replica answers those, however far behind it is: a node resumed
// after a pause answered a graph's last transaction from before the
// pause, and its grain took its snapshot for a history the stream had
// lost (a false DATA_LOSS quarantine). Reads that must see the stream as
// it is are decided here, at the leader (getMsg and getLastMsg ask a
// replica first and the leader confirms or answers; Read's batches are
// checked against a last sequence read that way).
func (s *Store) leaderMsg(ctx context.Context, req map[string]any) (*jetstream.RawStreamMsg, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	// Tries of a second: a stream without a leader (an election under
	// way) answers nothing, and the request asked then would wait out
	// the whole timeout after a new leader could have answered it.
	var resp leaderMsgResponse
	try := leaderTry
	for {
		tctx, tcancel := context.WithTimeout(ctx, try)
		// A try that waits for a leader being elected is asked again
		// as soon as the stream says it has one (the store watches for
		// that once it appended; readers that never append do not).
		if elected := s.pub.leaderChange(false); elected != nil {
			go func() {
				select {
				case <-elected:
					tcancel()
				case <-tctx.Done():
				}
			}()
		}
		var m *nats.Msg
		m, err = s.js.Conn().RequestWithContext(tctx, "$JS.API.STREAM.MSG.GET."+s.cfg.Stream, data)
		woken := err != nil && tctx.Err() == context.Canceled && ctx.Err() == nil
		tcancel()
		if woken {
			continue // a leader was elected: ask it
		}
		if err == nil {
			resp = leaderMsgResponse{}
			if err = json.Unmarshal(m.Data, &resp); err != nil {
				return nil, fmt.Errorf("%w: message get answer: %v", ErrUnavailable, err)
			}
			// 503: the NATS cluster has no meta leader for a moment (one
			// was paused or killed); the next try may find one.
			if resp.Error == nil || resp.Error.Code != 503 {
				break
			}
			err = fmt.Errorf("%w: %s", ErrUnavailable, resp.Error.Description)
		}
		if ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, ErrUnavailable)) {
			return nil, err
		}
		if try == leaderTry && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
			// No answer in a second: lost to an election, or a large
			// message on its way (32 MiB of base64 JSON). With a leader
			// there, the next try waits as long as it takes.
			ictx, icancel := context.WithTimeout(ctx, leaderTry)
			info, ierr := s.stream.Info(ictx)
			icancel()
			if ierr == nil && (info.Cluster == nil || info.Cluster.Leader != "") {
				try = s.cfg.OpTimeout
			}
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return nil, err
		}
	}
	if e := resp.Error; e != nil {
		if e.ErrCode == uint16(jetstream.JSErrCodeMessageNotFound) {
			return nil, jetstream.ErrMsgNotFound
		}
		return nil, &jetstream.APIError{Code: e.Code, ErrorCode: jetstream.ErrorCode(e.ErrCode), Description: e.Description}
	}
	if resp.Message == nil {
		return nil, fmt.Errorf("%w: message get answered no message", ErrUnavailable)
	}
	out := &jetstream.RawStreamMsg{Subject: resp.Message.Subject, Sequence: resp.Message.Seq, Data: resp.Message.Data, Time: resp.Message.Time}
	if len(resp.Message.Header) > 0 {
		if out.Header, err = parseHeader(resp.Message.Header); err != nil {
			return nil, fmt.Errorf("seq %d: %w: headers: %v", out.Sequence, ErrMalformed, err)
		}
	}
	return out, nil
}

// leaderMsgResponse is $JS.API.STREAM.MSG.GET's answer.
type leaderMsgResponse struct {
	Error *struct {
		Code        int    `json:"code"`
		ErrCode     uint16 `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
	Message *struct {
		Subject string    `json:"subject"`
		Seq     uint64    `json:"seq"`
		Header  []byte    `json:"hdrs"`
		Data    []byte    `json:"data"`
		Time    time.Time `json:"time"`
	} `json:"message"`
}

// leaderTry bounds one try of a read from the stream's leader.
const leaderTry = time.Second

// parseHeader parses a NATS header block ("NATS/1.0\r\nKey: value\r\n…").
func parseHeader(b []byte) (nats.Header, error) {
	r := textproto.NewReader(bufio.NewReader(bytes.NewReader(b)))
	if _, err := r.ReadLine(); err != nil { // NATS/1.0
		return nil, err
	}
	h, err := r.ReadMIMEHeader()
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return nats.Header(h), nil
}

// checkGraph refuses graph ids that are not one plain subject token: a
// wildcard or a dot would read or write other graphs' subjects.
func checkGraph(graph string) error {
	if graph == "" || strings.ContainsAny(graph, ".*> \t\r\n") {
		return fmt.Errorf("%w: %q is not a graph id (one subject token, no wildcards)", ErrInvalidGraph, graph)
	}
	return nil
}

// Subject returns the subject that holds graph's transactions.
func (s *Store) Subject(graph string) string { return s.cfg.SubjectPrefix + "." + graph }

// FileStoreMaxRecord is the largest message JetStream's file store keeps
// (nats-server's rlBadThresh, 32 MiB), counting its subject, headers and
// 42 bytes of framing; it refuses a larger one with "message too large",
// whatever max_payload allows.
const FileStoreMaxRecord = 32 << 20

// HeaderRoom is what MaxTransactionBytes keeps free of a message for its
// subject, Append's headers (expected sequence and message id) and the
// file store's framing. Append refuses a transaction id longer than
// MaxTxIDBytes and a subject longer than MaxSubjectBytes, so they always
// fit in it.
const HeaderRoom = 1024

// MaxTxIDBytes is the longest transaction id Append takes.
const MaxTxIDBytes = 256

// MaxSubjectBytes is the longest subject (prefix, dot and graph id) Append
// writes to.
const MaxSubjectBytes = 512

// MaxTransactionBytes returns the largest marshalled transaction
// (proto.Size of a cairn.v1.Transaction) that Append accepts: the smallest
// of the NATS connection's max payload (the server's max_payload, as the
// server announced it; DefaultMaxPayload on the embedded server), the
// stream's max message size and FileStoreMaxRecord, less HeaderRoom. A
// writer checks a transaction against it before appending, and splits or
// refuses the work; Append refuses a larger one with a *TooLargeError. It
// follows the server the connection is on now, so it can change after a
// reconnect to a server with another max_payload.
func (s *Store) MaxTransactionBytes() int {
	limit := min(int(s.js.Conn().MaxPayload()), FileStoreMaxRecord)
	if ci := s.stream.CachedInfo(); ci != nil && ci.Config.MaxMsgSize > 0 {
		limit = min(limit, int(ci.Config.MaxMsgSize))
	}
	return max(0, limit-HeaderRoom)
}

// Append stores tx as one message on graph's subject, provided the subject's
// last sequence is still expectedSeq (0: the graph has no transaction yet).
// A retry with the same tx id within the duplicate window returns the
// original sequence instead of storing it twice. It waits for the stream's
// acknowledgement until ctx ends, or for OpTimeout when ctx has no
// deadline.
//
// A transaction larger than MaxTransactionBytes is refused before anything
// is sent, with a *TooLargeError wrapping ErrTooLarge: one stream message
// holds one transaction, and the server would refuse it.
//
// Errors: ErrConflict when the subject moved on; ErrUnavailable when NATS or
// the stream did not answer; ErrTooLarge; ErrInvalidGraph; ctx's error when
// ctx ended first.
func (s *Store) Append(ctx context.Context, graph string, expectedSeq uint64, tx *cairnv1.Transaction) (uint64, error) {
	if _, ok := ctx.Deadline(); ok {
		return s.appendTx(ctx, nil, s.cfg.OpTimeout, graph, expectedSeq, tx, nil)
	}
	return s.AppendWithin(ctx, s.cfg.OpTimeout, graph, expectedSeq, tx, nil)
}

// AppendWithin is Append waiting at most about within for the
// acknowledgement (and at most until ctx ends): the time-out is a coarse
// one (up to appendTick late) that appends ending in the same tick share,
// with no timer or context of its own. The grains append through it.
// Errors as Append's; a time-out is ErrUnavailable wrapping
// context.DeadlineExceeded.
//
// sealed, when not nil, is tx's events as Seal got them: the store's
// followers then take the transaction stored at its sequence from it
// rather than decoding it, when the bytes they read are those published
// (Followed.Sealed). tx and sealed must not change after the call.
func (s *Store) AppendWithin(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *Sealed) (uint64, error) {
	return s.appendTx(ctx, s.wheel.After(within), within, graph, expectedSeq, tx, sealed)
}

// LeaderElected returns a channel closed when the event stream next
// elects a leader, as its advisory ($JS.EVENT.ADVISORY.STREAM.LEADER_ELECTED)
// says; the store subscribes to the advisories on its first append or
// call of LeaderElected. An append refused with ErrNoLeader can wait on
// it (and a back-off) before it is sent again; reads that must ask the
// leader try again at once when it closes. Without permission for the
// advisory it never closes.
func (s *Store) LeaderElected() <-chan struct{} { return s.pub.leaderChange(true) }

// appendTick is how late an AppendWithin time-out may fire.
const appendTick = 10 * time.Millisecond

// appendTx is Append; expired, when not nil, closes when the wait is over.
// The rare follow-up reads (the duplicate and conflict checks) are bounded
// by ctx, else by within.
func (s *Store) appendTx(ctx context.Context, expired <-chan struct{}, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *Sealed) (uint64, error) {
	out := s.outs.Get().(*outTx)
	defer out.release(&s.outs)
	msg, err := s.prepare(ctx, out, graph, expectedSeq, tx, sealed)
	if err != nil {
		return 0, err
	}
	seq, dup, err := s.pub.publish(ctx, expired, out)
	return s.settle(ctx, within, graph, msg.Subject, expectedSeq, tx, sealed, ackResult{seq: seq, dup: dup, err: err})
}

// AppendAsync is AppendWithin without the wait: done gets what
// AppendWithin would have returned, once. It is called on the caller's
// goroutine when tx is refused before it is sent, on the store's NATS
// subscription for a plain acknowledgement (done must not block), and
// else on a goroutine of its own (a duplicate or conflict to look into, a
// refusal, a time-out: up to appendTick late, without a timer or context
// per append). The caller's goroutine is not held while JetStream stores
// tx: a grain appends through it with no goroutine waiting per append.
func (s *Store) AppendAsync(ctx context.Context, within time.Duration, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *Sealed, done func(seq uint64, err error)) {
	out := s.outs.Get().(*outTx)
	defer out.release(&s.outs)
	if _, err := s.prepare(ctx, out, graph, expectedSeq, tx, sealed); err != nil {
		done(0, err)
		return
	}
	s.pub.publishAsync(time.Now().Add(within), out, func(r ackResult) {
		if r.err == nil && !r.dup {
			done(r.seq, nil)
			return
		}
		go func() {
			done(s.settle(ctx, within, graph, s.Subject(graph), expectedSeq, tx, sealed, r))
		}()
	})
}

// prepare checks tx and makes out's message of it (on out's buffers),
// remembering sealed for the followers.
func (s *Store) prepare(ctx context.Context, out *outTx, graph string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *Sealed) (*nats.Msg, error) {
	if err := checkGraph(graph); err != nil {
		return nil, fmt.Errorf("append: %w", err)
	}
	if n := len(tx.GetTxId()); n > MaxTxIDBytes {
		return nil, fmt.Errorf("append %s: transaction id of %d bytes, more than %d", graph, n, MaxTxIDBytes)
	}
	subject := out.subject(s.cfg.SubjectPrefix, graph)
	if n := len(subject); n > MaxSubjectBytes {
		return nil, fmt.Errorf("append: %w: subject of %d bytes, more than %d", ErrInvalidGraph, n, MaxSubjectBytes)
	}
	// proto.Size walks the message without allocating: a transaction over
	// the limit is refused before it is marshalled.
	limit := s.MaxTransactionBytes()
	if n := proto.Size(tx); n > limit {
		return nil, &TooLargeError{Graph: graph, Size: n, Limit: limit}
	}
	data, err := proto.MarshalOptions{}.MarshalAppend(out.data[:0], tx)
	out.data = data
	if err != nil {
		return nil, fmt.Errorf("append %s: marshal: %w", graph, err)
	}
	msg := out.message(subject, data, expectedSeq, tx.GetTxId())
	s.own.put(tx.GetTxId(), data, tx, sealed)
	// A traced append (a span in ctx) stores its trace context with the
	// transaction, for the projections' apply span.
	tracing.Inject(ctx, msg.Header)
	return msg, nil
}

// settle turns the answer r to the publish of tx to subject into
// Append's result, looking into a duplicate or a conflict.
func (s *Store) settle(ctx context.Context, within time.Duration, graph, subject string, expectedSeq uint64, tx *cairnv1.Transaction, sealed *Sealed, r ackResult) (uint64, error) {
	seq, dup, err := r.seq, r.dup, r.err
	if err == nil && !dup {
		return seq, nil
	}
	if err != nil && !errors.Is(err, errAckTimeout) {
		// Refused, or never sent: its followers will decode whatever
		// an earlier try stored (a publish that timed out may yet be
		// stored, and read back).
		s.own.drop(sealed)
	}
	if errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, ErrNoLeader) {
		err = fmt.Errorf("%w: %w", ErrNoLeader, err)
	}
	if errors.Is(err, errAckTimeout) || ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		return 0, fmt.Errorf("append %s: %w: %w", graph, ErrUnavailable, err)
	}
	ctx, cancel := withTimeout(ctx, within)
	defer cancel()
	if err == nil {
		// A duplicate. The duplicate window is stream-wide: make sure the
		// stored original is this graph's transaction.
		m, err := s.getMsg(ctx, seq, "")
		if err != nil {
			return 0, fmt.Errorf("append %s: check duplicate: %w", graph, translate(err))
		}
		if m.Subject != subject {
			return 0, fmt.Errorf("append %s: %w: transaction id %s was already used on %s", graph, ErrConflict, tx.GetTxId(), m.Subject)
		}
		return seq, nil
	}
	err = translate(err)
	if errors.Is(err, ErrConflict) {
		// nats-server checks the expected subject sequence before the
		// duplicate window, so a retry of a stored transaction conflicts.
		if seq, ok := s.storedAfter(ctx, subject, expectedSeq, tx.GetTxId()); ok {
			return seq, nil
		}
	}
	return 0, fmt.Errorf("append %s: %w", graph, err)
}

// storedAfter returns the sequence of subject's first message after seq when
// that message is the transaction txID: then it was an earlier try of this
// append that moved the subject on.
func (s *Store) storedAfter(ctx context.Context, subject string, seq uint64, txID string) (uint64, bool) {
	if txID == "" {
		return 0, false
	}
	m, err := s.getMsg(ctx, seq+1, subject)
	if err != nil || m.Header.Get(jetstream.MsgIDHeader) != txID {
		return 0, false
	}
	return m.Sequence, true
}

// LastSeq returns the stream sequence of graph's last transaction, 0 when it
// has none.
func (s *Store) LastSeq(ctx context.Context, graph string) (uint64, error) {
	if err := checkGraph(graph); err != nil {
		return 0, fmt.Errorf("last seq: %w", err)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getLastMsg(ctx, s.Subject(graph))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("last seq of %s: %w", graph, translate(err))
	}
	return m.Sequence, nil
}

// LastHead returns the stream sequence of graph's last transaction and the
// head it ends with (its last event's position and CID); 0 and a zero Head
// when the graph has none in the stream. Time travel resolves a point past
// the head to it. Errors: ErrUnavailable, ErrMalformed (the last message is
// no transaction, or its last event does not decode), ErrInvalidGraph.
func (s *Store) LastHead(ctx context.Context, graph string) (uint64, Head, error) {
	if err := checkGraph(graph); err != nil {
		return 0, Head{}, fmt.Errorf("last head: %w", err)
	}
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getLastMsg(ctx, s.Subject(graph))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, Head{}, nil
	}
	if err != nil {
		return 0, Head{}, fmt.Errorf("last head of %s: %w", graph, translate(err))
	}
	rec, err := decodeRecord(m.Sequence, m.Time, m.Data)
	if err != nil {
		return 0, Head{}, fmt.Errorf("last head of %s: %w", graph, err)
	}
	evs := rec.Tx.GetEvents()
	if len(evs) == 0 {
		return 0, Head{}, fmt.Errorf("last head of %s: seq %d: %w", graph, m.Sequence, malformed("a transaction without events"))
	}
	last := evs[len(evs)-1]
	env, err := DecodeEnvelope(last.GetDagCbor())
	if err != nil {
		return 0, Head{}, fmt.Errorf("last head of %s: seq %d: %w", graph, m.Sequence, err)
	}
	c, err := cid.Cast(last.GetCid())
	if err != nil {
		return 0, Head{}, fmt.Errorf("last head of %s: seq %d: %w", graph, m.Sequence, malformed("event cid: "+err.Error()))
	}
	return m.Sequence, Head{N: env.N, CID: c}, nil
}

// Read calls fn for each of graph's transactions with a stream sequence of at
// least fromSeq, in order, up to the graph's last transaction when Read
// started. It returns that last sequence (0 when the graph has none). An
// error from fn stops the read and is returned as is.
//
// With WithObjects, Read reads across archive and stream: first graph's
// archived transactions with a sequence of at least fromSeq, then the
// stream's from after the last archived one. A transaction that a
// concurrent Archive moves out of the stream during the read is taken from
// its new archive (Read notices the gap in chain positions). Without it,
// Read is stream-only.
//
// Errors: ErrUnavailable, ErrMalformed (a message or archive that is no
// transaction), ErrInvalidGraph, ctx's error, or fn's.
func (s *Store) Read(ctx context.Context, graph string, fromSeq uint64, fn func(Record) error) (uint64, error) {
	last, err := s.LastSeq(ctx, graph)
	if err != nil || last == 0 || last < fromSeq {
		return last, err
	}
	if s.arc.obj != nil {
		return last, s.readAcross(ctx, graph, fromSeq, last, []string{s.Subject(graph)}, "", fn)
	}
	return last, s.consume(ctx, []string{s.Subject(graph)}, "", fromSeq, last, fn)
}

// ReadScan is Read done the slow way: it reads every message of the stream
// from fromSeq on and keeps graph's, instead of asking the server to filter
// by subject. It is the fallback when a filtered read was found to have
// skipped a message (a chain gap), which a server whose per-subject index
// is wrong after an unclean stop could do. Like Read, it reads graph's
// archives first when the store has them. Errors as for Read.
func (s *Store) ReadScan(ctx context.Context, graph string, fromSeq uint64, fn func(Record) error) (uint64, error) {
	last, err := s.LastSeq(ctx, graph)
	if err != nil || last == 0 || last < fromSeq {
		return last, err
	}
	if s.arc.obj != nil {
		return last, s.readAcross(ctx, graph, fromSeq, last, nil, s.Subject(graph), fn)
	}
	return last, s.consume(ctx, nil, s.Subject(graph), fromSeq, last, fn)
}

// ReadAll calls fn for every transaction in the stream with a sequence of at
// least fromSeq, in order, up to the stream's last message when ReadAll
// started. It returns that last sequence. It reads the stream only:
// archived transactions are not in it (Read reads a graph's).
// Errors as for Read.
func (s *Store) ReadAll(ctx context.Context, fromSeq uint64, fn func(Record) error) (uint64, error) {
	ictx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	info, err := s.stream.Info(ictx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("stream info: %w", translate(err))
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || last < fromSeq {
		return last, nil
	}
	return last, s.consume(ctx, nil, "", fromSeq, last, fn)
}

// consume reads from fromSeq to last, the server filtering by subjects (all
// when nil) and this side keeping only subject only (all when "").
func (s *Store) consume(ctx context.Context, subjects []string, only string, fromSeq, last uint64, fn func(Record) error) error {
	return s.iterate(ctx, subjects, fromSeq, last, func(m storedMsg) (bool, error) {
		if only == "" || m.Subject == only {
			rec, err := decodeRecord(m.Seq, m.Time, m.Data)
			if err != nil {
				return false, err
			}
			rec.Header = m.Header
			if err := fn(rec); err != nil {
				return false, err
			}
		}
		// Pending 0: nothing left for this read, even if the message at
		// last was deleted meanwhile.
		return m.Seq >= last || m.Pending == 0, nil
	})
}

// storedMsg is one stored message as a reader gets it.
type storedMsg struct {
	Subject string
	Seq     uint64
	Time    time.Time
	Data    []byte
	Header  nats.Header
	// Pending is how many messages the read has left after this one (0:
	// none).
	Pending uint64
}

// iterate reads the stream from fromSeq on (the server filtering by
// subjects, all when nil) and calls fn for each message until fn says
// done, fn fails or ctx ends. A read of one subject up to a known last
// sequence (upTo > 0) goes by batched direct gets, which any replica
// answers with no consumer to create (so it needs no JetStream meta
// leader: a grain activates while the NATS cluster elects one); whatever
// that cannot read, a consumer reads in order (pullReader). Read,
// ReadAll, ReadScan and Follow all go through it.
func (s *Store) iterate(ctx context.Context, subjects []string, fromSeq, upTo uint64, fn func(storedMsg) (done bool, err error)) error {
	if len(subjects) == 1 && upTo > 0 && !noDirectReads {
		next, done, err := s.iterateDirect(ctx, subjects[0], max(fromSeq, 1), upTo, fn)
		if done || err != nil {
			return err
		}
		fromSeq = next
	}
	return s.iterateWatched(ctx, subjects, fromSeq, 0, fn)
}

// noDirectReads turns direct-get reads off (benchmarks compare).
var noDirectReads = false

// directBatch is how many messages one direct get asks for, and
// directMax how many a read takes by direct gets before a consumer reads
// the rest. Direct gets need no consumer to be made (no round trip to the
// meta leader, none at all while it is being elected): a tail of 100
// transactions reads in 1.8 ms against 6.5 ms with a consumer
// (BenchmarkStoreRead, median of 3). But per message they cost more (the
// server rewrites each message's headers): alone they read 20,000
// transactions at about 100K/s against a consumer's 140K to 270K/s, so
// long reads go on with a consumer past directMax (174K/s in all against
// 231K/s, BenchmarkStoreRead/20000).
const (
	directBatch = 1024
	directMax   = 4 * directBatch
)

// iterateDirect reads subject's messages from fromSeq up to upTo with
// batched direct gets ($JS.API.DIRECT.GET, nats-server 2.11 on), at most
// directMax of them. It returns done when fn said so, an error from fn or ctx as is, and
// otherwise (the server does not answer direct gets, a replica lags
// behind upTo, or it failed) the sequence to read on from with a
// consumer. Pending is the server's count, but never 0 before upTo: a
// replica that lags may not hold the last messages yet.
func (s *Store) iterateDirect(ctx context.Context, subject string, fromSeq, upTo uint64, fn func(storedMsg) (bool, error)) (next uint64, done bool, err error) {
	nc := s.js.Conn()
	api := "$JS.API.DIRECT.GET." + s.cfg.Stream
	next = fromSeq
	short := 0 // answers that ended before upTo (a lagging replica)
	for read := 0; next <= upTo; {
		if read >= directMax {
			return next, false, nil // a long read: a consumer reads on
		}
		req, _ := json.Marshal(map[string]any{"seq": next, "next_by_subj": subject, "batch": directBatch,
			"max_bytes": pullBytes(nc.MaxPayload())})
		inbox := nc.NewRespInbox()
		sub, err := nc.SubscribeSync(inbox)
		if err != nil {
			return next, false, nil
		}
		if err := nc.PublishRequest(api, inbox, req); err != nil {
			_ = sub.Unsubscribe()
			return next, false, nil
		}
		progressed, ended, retry := false, false, false
		for !ended && !retry {
			m, err := sub.NextMsg(leaderTry)
			if err == nil && ctx.Err() != nil {
				err = ctx.Err()
			}
			if err != nil {
				_ = sub.Unsubscribe()
				if ctx.Err() != nil {
					return next, false, ctx.Err()
				}
				// No answer within a second: the replica asked may be
				// paused or gone. Ask again (another may answer), a few
				// times, then a consumer reads on.
				retry = true
				continue
			}
			if st := m.Header.Get("Status"); st != "" || len(m.Data) == 0 && m.Header.Get("Nats-Sequence") == "" {
				ended = true
				if st != "204" && st != "404" {
					_ = sub.Unsubscribe()
					return next, false, nil // 408, 503, …: a consumer reads on
				}
				continue
			}
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil || seq < next {
				_ = sub.Unsubscribe()
				return next, false, nil
			}
			ts, _ := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
			pending, _ := strconv.ParseUint(m.Header.Get("Nats-Num-Pending"), 10, 64)
			if seq < upTo {
				pending = max(pending, 1)
			}
			next, progressed = seq+1, true
			read++
			d, err := fn(storedMsg{Subject: m.Header.Get("Nats-Subject"), Seq: seq, Time: ts, Data: m.Data, Header: m.Header, Pending: pending})
			if d || err != nil {
				_ = sub.Unsubscribe()
				return next, d, err
			}
		}
		_ = sub.Unsubscribe()
		if !progressed || retry {
			// Nothing at or after next (a replica that lags, or the
			// messages up to upTo were deleted), or no answer (a
			// replica paused or gone). A few tries, then a consumer
			// (the stream leader's view) decides.
			if short++; short > 3 {
				return next, false, nil
			}
			select {
			case <-time.After(time.Duration(short) * 20 * time.Millisecond):
			case <-ctx.Done():
				return next, false, ctx.Err()
			}
		}
	}
	return next, true, nil
}

// iterateWatched is iterate with a watchdog when stall > 0: when no
// message came for stall while the stream holds messages past the last one
// delivered, the consumer is given up with an ErrUnavailable, so that the
// caller follows again from where it was. After a stream leader was killed,
// nats.go's ordered consumer (which pullReader replaced) sometimes never
// resumed (a projection stayed behind for over a minute in 1 of 5 runs of
// TestReplicatedStoreLeaderKill).
func (s *Store) iterateWatched(ctx context.Context, subjects []string, fromSeq uint64, stall time.Duration, fn func(storedMsg) (done bool, err error)) error {
	if fromSeq == 0 {
		fromSeq = 1
	}
	r := s.newPullReader(subjects, fromSeq)
	if err := r.start(ctx); err != nil {
		return fmt.Errorf("read from %d: %w", fromSeq, err)
	}
	defer r.close()
	defer r.watchReconnects()()
	// Next does not watch ctx while it waits: stop it when ctx ends.
	stop := context.AfterFunc(ctx, r.stop)
	defer stop()
	var lastAt atomic.Int64   // when the last message came (unix ns)
	var lastSeq atomic.Uint64 // its stream sequence
	var stalled atomic.Bool
	lastAt.Store(time.Now().UnixNano())
	lastSeq.Store(fromSeq - 1)
	if stall > 0 {
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		go s.watchStall(wctx, stall, &lastAt, &lastSeq, func() { stalled.Store(true); r.stop() })
	}
	for {
		m, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if stalled.Load() {
				return fmt.Errorf("read from %d: %w: no message for %s past seq %d while the stream holds more", fromSeq, ErrUnavailable, stall, lastSeq.Load())
			}
			return fmt.Errorf("read from %d: %w", fromSeq, err)
		}
		lastSeq.Store(m.Seq)
		// While fn runs (a projection waiting for a busy shard) the
		// consumer is not stalled: the clock starts when fn returns.
		lastAt.Store(math.MaxInt64)
		done, err := fn(m)
		lastAt.Store(time.Now().UnixNano())
		if done || err != nil {
			return err
		}
	}
}

// watchStall calls stalled once no message came for stall (lastAt) while
// the stream's last sequence is past the last one delivered (lastSeq).
func (s *Store) watchStall(ctx context.Context, stall time.Duration, lastAt *atomic.Int64, lastSeq *atomic.Uint64, stalled func()) {
	t := time.NewTicker(stall / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if at := lastAt.Load(); at == math.MaxInt64 || time.Since(time.Unix(0, at)) < stall {
			continue
		}
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := s.stream.Info(ictx)
		cancel()
		if err == nil && info.State.LastSeq > lastSeq.Load() {
			stalled()
			return
		}
	}
}

// readPullExpiry is how long one pull of a reader waits on the server.
const readPullExpiry = 5 * time.Second

// pullBytes is how many bytes a reader pulls at a time from a server whose
// max_payload is maxPayload. By bytes, not messages: a transaction of 1,000
// events is about 190 KB, and 1,024 of them per pull made catch-up 3x
// slower (BenchmarkProjectionCatchUp: 54 s -> 17 s for 4M events). A pull
// must hold the largest message the server takes (a smaller one stalls on
// it), with room for its subject and the headers JetStream adds; more than
// that would only let the server queue more for the client, whose
// outbound buffer (max_pending) the server bounds.
func pullBytes(maxPayload int64) int {
	return int(max(16<<20, maxPayload+64<<10))
}

// pullMessages bounds the messages of a reader's pull as well: nats.go
// sizes the iterator's buffer by it, and with a byte limit alone it takes
// 1,000,000 (an 8 MB channel buffer per reader, for as long as it
// follows). 16,384 transactions of one small event are about 6 MB, so the
// byte limit still bounds the pulls of anything but the smallest
// transactions.
const pullMessages = 16 << 10

// Get returns the transaction stored at stream sequence seq. It reads the
// stream only; GetGraph also finds a graph's archived transactions.
//
// Errors: ErrNotFound, ErrMalformed, ErrUnavailable.
func (s *Store) Get(ctx context.Context, seq uint64) (Record, error) {
	ctx, cancel := withTimeout(ctx, s.cfg.OpTimeout)
	defer cancel()
	m, err := s.getMsg(ctx, seq, "")
	if err != nil {
		return Record{}, fmt.Errorf("get seq %d: %w", seq, translate(err))
	}
	return decodeRecord(m.Sequence, m.Time, m.Data)
}

// VerifyResult summarises a whole, verified chain.
type VerifyResult struct {
	Graph        string
	Transactions int
	Events       uint64
	Head         Head
	LastSeq      uint64
	// Signed counts the transactions that carry a signature, and KeyIDs
	// are the keys that made them, sorted and space-separated (a string:
	// results compare with ==). Only a Store given a keyring (WithSigning)
	// has checked them.
	Signed int
	KeyIDs string
}

// Verify reads every transaction of graph (across archive and stream, as
// Read does) and checks its chain: each CID is recomputed from the stored
// envelope bytes, each prev link and position is checked, and with
// WithSigning's keyring each signature. It returns the first break as a
// *ChainError (wrapping ErrChainBroken), or ErrNotFound when the graph has
// no transaction.
func (s *Store) Verify(ctx context.Context, graph string) (VerifyResult, error) {
	res := VerifyResult{Graph: graph}
	chain := NewChain(graph, WithTrust(s.trust))
	var keys []string
	last, err := s.Read(ctx, graph, 1, func(r Record) error {
		if _, err := chain.Check(r.Seq, r.Tx); err != nil {
			return err
		}
		res.Transactions++
		if len(r.Tx.GetSignature()) > 0 {
			res.Signed++
			if id := r.Tx.GetKeyId(); !slices.Contains(keys, id) {
				keys = append(keys, id)
			}
		}
		return nil
	})
	slices.Sort(keys)
	res.KeyIDs = strings.Join(keys, " ")
	res.LastSeq, res.Head, res.Events = last, chain.Head(), chain.Head().N
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", graph, err)
	}
	if last == 0 {
		return res, fmt.Errorf("verify %s: %w: graph has no transactions", graph, ErrNotFound)
	}
	return res, nil
}

func decodeRecord(seq uint64, ts time.Time, data []byte) (Record, error) {
	tx := &cairnv1.Transaction{}
	if err := proto.Unmarshal(data, tx); err != nil {
		return Record{}, fmt.Errorf("seq %d: %w: %v", seq, ErrMalformed, err)
	}
	return Record{Seq: seq, Time: ts, Tx: tx}, nil
}

// translate maps JetStream and NATS failures to this package's sentinels,
// keeping the original error in the chain.
func translate(err error) error {
	var apiErr *jetstream.APIError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &apiErr):
		switch apiErr.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return fmt.Errorf("%w: %w", ErrConflict, err)
		case jetstream.JSErrCodeMessageNotFound, jetstream.JSErrCodeStreamNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case jetstream.JSErrCodeStreamMessageExceedsMaximum:
			return fmt.Errorf("%w: %w", ErrTooLarge, err)
		case jsErrCodeReplicasNotSupported:
			return fmt.Errorf("%w: %w", ErrNotClustered, err)
		case jsErrCodeDuplicateInProcess:
			// An earlier try of this transaction is still being stored
			// (a stream leader that fails over): its outcome is not
			// known yet.
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		case jsErrCodeNoPeers:
			// Too few JetStream nodes are up for the replicas asked for:
			// one may yet join.
			return fmt.Errorf("%w: too few NATS nodes are up for the replicas asked for: %w", ErrUnavailable, err)
		}
		if apiErr.Code == 503 {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	case errors.Is(err, context.Canceled):
		return err
	case errors.Is(err, nats.ErrMaxPayload):
		// The server's limit fell below what MaxTransactionBytes read.
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	default:
		// Time-outs, no responders, closed or reconnecting connections.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
}

// JetStream API error codes that nats.go has no constant for
// (nats-server's JSStreamReplicasNotSupportedErr, JSClusterNoPeersErrF
// and JSStreamDuplicateMessageConflict).
const (
	jsErrCodeReplicasNotSupported jetstream.ErrorCode = 10074
	jsErrCodeNoPeers              jetstream.ErrorCode = 10005
	jsErrCodeDuplicateInProcess   jetstream.ErrorCode = 10158
)

// withTimeout bounds ctx by d unless it has a deadline already.
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
