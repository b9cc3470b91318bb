package persistence_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// removeNodeTx is the transaction a graph grain seals for RemoveNode of a
// node with edges edges: one EdgeRemoved per edge, then NodeRemoved, chained
// onto head and sealed as actors/graph_grain.go's seal does. Edge ids are
// the importer's ("source-[type]->target"), node ids 12 bytes.
func removeNodeTx(tb testing.TB, graph, txID string, head persistence.Head, edges int) *cairnv1.Transaction {
	tb.Helper()
	evs := make([]*cairnv1.Event, 0, edges+1)
	for i := range edges {
		target := fmt.Sprintf("user:%07d", i)
		evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_EdgeRemoved{EdgeRemoved: &cairnv1.EdgeRemoved{
			EdgeId: "user:hub-[follows]->" + target, Source: "user:hub", Target: target}}})
	}
	evs = append(evs, &cairnv1.Event{Kind: &cairnv1.Event_NodeRemoved{NodeRemoved: &cairnv1.NodeRemoved{NodeId: "user:hub"}}})
	ts := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC).UnixNano()
	recs, _, err := persistence.Seal(graph, txID, ts, head, evs)
	if err != nil {
		tb.Fatal(err)
	}
	return &cairnv1.Transaction{GraphId: graph, TxId: txID, TimestampUnixNano: ts, Events: recs,
		Commands: []*cairnv1.CommandRecord{{CommandId: "remove-hub", Issuer: "test", EventCount: uint32(len(recs))}}}
}

// TestStoreLargeTransaction: removing a node with 100,000 edges is one
// transaction of about 24 MB; it is appended as one message and every
// reader gives it back whole.
func TestStoreLargeTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	srv := natstest.Start(t)
	st := srv.Store()
	first := tx("big", "t1", persistence.Head{}, 1)
	seq1 := mustAppend(t, ctx, st, "big", 0, first)
	big := removeNodeTx(t, "big", "t2", headOf(t, first), 100_000)
	size := proto.Size(big)
	if size <= 8<<20 || size > st.MaxTransactionBytes() {
		t.Fatalf("the transaction takes %d bytes; want more than the old 8 MiB limit and at most %d", size, st.MaxTransactionBytes())
	}
	t.Logf("100,000 EdgeRemoved + NodeRemoved: %d bytes; limit %d", size, st.MaxTransactionBytes())
	seq := mustAppend(t, ctx, st, "big", seq1, big)
	// Another graph's transaction after it: readers must go past the big one.
	after := mustAppend(t, ctx, st, "other", 0, tx("other", "t3", persistence.Head{}, 1))

	check := func(name string, recs []persistence.Record) {
		t.Helper()
		if len(recs) != 2 || recs[0].Seq != seq1 || recs[1].Seq != seq {
			seqs := make([]uint64, len(recs))
			for i, r := range recs {
				seqs[i] = r.Seq
			}
			t.Fatalf("%s: read seqs %v, want [%d %d]", name, seqs, seq1, seq)
		}
		if !proto.Equal(recs[1].Tx, big) {
			t.Fatalf("%s: the big transaction came back changed (%d events, %d bytes)", name, len(recs[1].Tx.GetEvents()), proto.Size(recs[1].Tx))
		}
		chain := persistence.NewChain("big")
		for _, r := range recs {
			if _, err := chain.Check(r.Seq, r.Tx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if got := chain.Head().N; got != 100_002 {
			t.Fatalf("%s: chain ends at %d, want 100002", name, got)
		}
	}
	reads := []struct {
		name string
		read func(context.Context, string, uint64, func(persistence.Record) error) (uint64, error)
	}{{"Read", st.Read}, {"ReadScan", st.ReadScan}}
	for _, r := range reads {
		var recs []persistence.Record
		last, err := r.read(ctx, "big", 0, func(rec persistence.Record) error {
			recs = append(recs, rec)
			return nil
		})
		if err != nil || last != seq {
			t.Fatalf("%s: last %d, err %v; want %d", r.name, last, err, seq)
		}
		check(r.name, recs)
	}

	var followed []persistence.Record
	errDone := errors.New("done")
	err := st.Follow(ctx, 1, func(f persistence.Followed) error {
		if f.Err != nil {
			return f.Err
		}
		if f.Graph == "big" {
			followed = append(followed, f.Record)
		}
		if f.Seq == after {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		t.Fatalf("Follow: %v", err)
	}
	check("Follow", followed)

	var all []persistence.Record
	if _, err := st.ReadAll(ctx, 1, func(r persistence.Record) error {
		if r.Tx.GetGraphId() == "big" {
			all = append(all, r)
		}
		return nil
	}); err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	check("ReadAll", all)

	got, err := st.Get(ctx, seq)
	if err != nil || !proto.Equal(got.Tx, big) {
		t.Fatalf("Get(%d): err %v, equal %v", seq, err, err == nil && proto.Equal(got.Tx, big))
	}
	if res, err := st.Verify(ctx, "big"); err != nil || res.Events != 100_002 {
		t.Fatalf("Verify: %+v, %v", res, err)
	}
}

// tx is a transaction of n NodeAdded events of graph, chained onto head.
func tx(graph, txID string, head persistence.Head, n int) *cairnv1.Transaction {
	evs := make([]*cairnv1.Event, n)
	for i := range evs {
		evs[i] = nodeAdded(fmt.Sprint(txID, "-", i))
	}
	t, _, err := sealTx(graph, txID, 1_700_000_000_000_000_000, head, evs, nil)
	if err != nil {
		panic(err) // Seal fails only without events
	}
	return t
}

// headOf is the head after tx, the first transaction of its graph.
func headOf(t *testing.T, tx *cairnv1.Transaction) persistence.Head {
	t.Helper()
	chain := persistence.NewChain(tx.GetGraphId())
	if _, err := chain.Check(1, tx); err != nil {
		t.Fatal(err)
	}
	return chain.Head()
}

// serverWith is an embedded server whose max_payload is maxPayload (0: the
// default), and a function that opens a store on it.
func serverWith(t *testing.T, maxPayload int32) (jetstream.JetStream, func(persistence.StoreConfig) *persistence.Store) {
	t.Helper()
	js := natstest.StartConfig(t, persistence.ServerConfig{Listen: persistence.ListenNone, MaxPayload: maxPayload}).JetStream()
	return js, func(cfg persistence.StoreConfig) *persistence.Store {
		st, err := persistence.OpenStore(t.Context(), js, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
}

// padTo pads tx (its first command's correlation id) so that it
// marshals to exactly size bytes.
func padTo(t *testing.T, tx *cairnv1.Transaction, size int) {
	t.Helper()
	c := tx.GetCommands()[0]
	for range 4 { // the length prefix's own size may change once or twice
		c.CorrelationId += strings.Repeat("p", max(0, size-proto.Size(tx)))
		if n := proto.Size(tx); n > size {
			c.CorrelationId = c.CorrelationId[:len(c.CorrelationId)-(n-size)]
		}
	}
	if n := proto.Size(tx); n != size {
		t.Fatalf("padded to %d bytes, want %d", n, size)
	}
}

func TestStoreMaxTransactionBytes(t *testing.T) {
	if got, want := natstest.Start(t).Store().MaxTransactionBytes(), persistence.DefaultMaxPayload-persistence.HeaderRoom; got != want {
		t.Errorf("embedded server's default: MaxTransactionBytes %d, want %d", got, want)
	}
	_, open := serverWith(t, 1<<20)
	if got, want := open(persistence.DefaultStoreConfig()).MaxTransactionBytes(), 1<<20-persistence.HeaderRoom; got != want {
		t.Errorf("max_payload 1 MiB: MaxTransactionBytes %d, want %d", got, want)
	}
	cfg := persistence.DefaultStoreConfig()
	cfg.MaxMsgSize = 256 << 10
	if got, want := open(cfg).MaxTransactionBytes(), 256<<10-persistence.HeaderRoom; got != want {
		t.Errorf("stream max message size 256 KiB: MaxTransactionBytes %d, want %d", got, want)
	}
	// A max_payload above the file store's record limit lets nothing
	// larger in.
	_, open = serverWith(t, 48<<20)
	if got, want := open(persistence.DefaultStoreConfig()).MaxTransactionBytes(), persistence.FileStoreMaxRecord-persistence.HeaderRoom; got != want {
		t.Errorf("max_payload 48 MiB: MaxTransactionBytes %d, want %d", got, want)
	}
}

// TestStoreAppendTooLarge: a transaction over the limit is refused with
// ErrTooLarge before anything is sent, and one exactly at the limit, with
// the longest transaction id and graph id, is stored: HeaderRoom holds the
// subject, Append's headers and the file store's framing. On the default
// server the limit is the file store's, which refuses more than 32 MiB.
func TestStoreAppendTooLarge(t *testing.T) {
	ctx := testCtx(t)
	for _, tc := range []struct {
		name       string
		maxPayload int32 // 0: the default
		maxMsg     int32
	}{
		{"default server", 0, -1},
		{"max_payload 1 MiB", 1 << 20, -1},
		{"max_payload 48 MiB", 48 << 20, -1},
		{"stream max_msg_size 256 KiB", 1 << 20, 256 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js, open := serverWith(t, tc.maxPayload)
			cfg := persistence.DefaultStoreConfig()
			cfg.MaxMsgSize = tc.maxMsg
			st := open(cfg)
			limit := st.MaxTransactionBytes()
			graph := strings.Repeat("g", 64) // the longest graph id the engine takes

			over := tx(graph, "over", persistence.Head{}, 1)
			padTo(t, over, limit+1)
			seq, err := st.Append(ctx, graph, 0, over)
			var tl *persistence.TooLargeError
			if !errors.Is(err, persistence.ErrTooLarge) || !errors.As(err, &tl) || seq != 0 {
				t.Fatalf("Append of %d bytes: seq %d, err %v; want ErrTooLarge", limit+1, seq, err)
			}
			if tl.Size != limit+1 || tl.Limit != limit || tl.Graph != graph {
				t.Errorf("TooLargeError %+v, want size %d, limit %d", *tl, limit+1, limit)
			}
			if msg := err.Error(); !strings.Contains(msg, fmt.Sprint(limit+1)) || !strings.Contains(msg, fmt.Sprint(limit)) {
				t.Errorf("error %q names neither the size nor the limit", msg)
			}
			if errors.Is(err, persistence.ErrUnavailable) {
				t.Errorf("ErrTooLarge is also ErrUnavailable: a caller would retry it")
			}
			if n := streamMsgs(t, ctx, js); n != 0 {
				t.Fatalf("the refused append stored %d messages", n)
			}

			// The largest transaction, with the longest ids, fits.
			id := strings.Repeat("x", persistence.MaxTxIDBytes)
			at := tx(graph, id, persistence.Head{}, 1)
			padTo(t, at, limit)
			if _, err := st.Append(ctx, graph, 0, at); err != nil {
				t.Fatalf("Append of exactly %d bytes: %v", limit, err)
			}
			if n := streamMsgs(t, ctx, js); n != 1 {
				t.Fatalf("stream holds %d messages, want 1", n)
			}
			// And comes back whole: Get (a direct get adds headers) and Read.
			if r, err := st.Get(ctx, 1); err != nil || !proto.Equal(r.Tx, at) {
				t.Fatalf("Get of the largest transaction: err %v", err)
			}
			n := 0
			if _, err := st.Read(ctx, graph, 1, func(r persistence.Record) error {
				if !proto.Equal(r.Tx, at) {
					return errors.New("the largest transaction came back changed")
				}
				n++
				return nil
			}); err != nil || n != 1 {
				t.Fatalf("Read of the largest transaction: %d read, err %v", n, err)
			}
			long := tx(graph, id+"x", headOf(t, at), 1)
			if _, err := st.Append(ctx, graph, 1, long); err == nil || errors.Is(err, persistence.ErrUnavailable) {
				t.Errorf("a transaction id over %d bytes: %v, want refused", persistence.MaxTxIDBytes, err)
			}
		})
	}
}

// BenchmarkLargeTransaction appends the transaction of removing a node with
// 100,000 edges (and 50,000, 150,000) and reads it back with Read. One op
// is one append and one read of a fresh graph.
func BenchmarkLargeTransaction(b *testing.B) {
	for _, edges := range []int{50_000, 100_000, 150_000} {
		b.Run(fmt.Sprint("edges=", edges), func(b *testing.B) {
			ctx := context.Background()
			st := natstest.Start(b).Store()
			big := removeNodeTx(b, "g0", "t0", persistence.Head{}, edges)
			size := proto.Size(big)
			var appendT, readT time.Duration
			b.ResetTimer()
			for i := range b.N {
				graph := fmt.Sprint("g", i)
				big.GraphId, big.TxId = graph, fmt.Sprint("t", i)
				t0 := time.Now()
				seq, err := st.Append(ctx, graph, 0, big)
				if err != nil {
					b.Fatal(err)
				}
				appendT += time.Since(t0)
				t0 = time.Now()
				n := 0
				if _, err := st.Read(ctx, graph, seq, func(r persistence.Record) error {
					n += len(r.Tx.GetEvents())
					return nil
				}); err != nil || n != edges+1 {
					b.Fatalf("read %d events, err %v", n, err)
				}
				readT += time.Since(t0)
			}
			b.ReportMetric(float64(size), "tx-bytes")
			b.ReportMetric(float64(appendT.Milliseconds())/float64(b.N), "append-ms")
			b.ReportMetric(float64(readT.Milliseconds())/float64(b.N), "read-ms")
			b.ReportMetric(float64(size)/float64(edges+1), "bytes/event")
		})
	}
}
