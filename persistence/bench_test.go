package persistence_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/natstest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// benchEvent is a NodeAdded like the engine benchmarks' (one component, one
// category); benchEnvelope wraps it mid-chain, so it carries prev. Its
// encoding is about 230 bytes.
func benchEvent() *cairnv1.Event {
	return &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{
		NodeId:     "n123456",
		Components: []*cairnv1.Component{{Type: "name", Value: []byte("a benchmark node's component value, 64 bytes of opaque payload..")}},
		Categories: []string{"bench"},
	}}}
}

func benchEnvelope(b *testing.B) persistence.Envelope {
	b.Helper()
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(benchEvent())
	if err != nil {
		b.Fatal(err)
	}
	prev, err := cid.Cast(persistence.EventCID([]byte("previous event")))
	if err != nil {
		b.Fatal(err)
	}
	return persistence.Envelope{
		Version: persistence.EnvelopeVersion, Graph: "g0500", N: 500, Type: "NodeAdded",
		Tx: "Gq5ZkVx9T3n6y2PqLmRb0A", TS: 1_700_000_000_123_456_789, Body: body, Prev: prev,
	}
}

// BenchmarkEventCID is the per-event cost of an event's identity: canonical
// dag-cbor encoding of its envelope plus the sha2-256 CID. One op is one
// event. "fast" is this package's encoder (Envelope.AppendEncode, EventCID);
// "ipld-prime" is the reference path through go-ipld-prime (build the node,
// encode it through the link system, hash: ipldCID); "seal" is what a graph
// grain pays per event in Seal, the event's protobuf body included. The
// benchmark checks once, untimed, that fast and reference agree.
func BenchmarkEventCID(b *testing.B) {
	env := benchEnvelope(b)
	enc := env.AppendEncode(nil)
	want, err := ipldCID(env)
	if err != nil {
		b.Fatal(err)
	}
	if got := persistence.EventCID(enc); string(got) != string(want.Bytes()) {
		b.Fatalf("fast CID %x differs from go-ipld-prime's %x", got, want.Bytes())
	}
	report := func(b *testing.B) {
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		b.ReportMetric(float64(len(enc)), "envelope-bytes")
	}

	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for range b.N {
			buf = env.AppendEncode(buf[:0])
			_ = persistence.EventCID(buf)
		}
		report(b)
	})
	b.Run("ipld-prime", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := ipldCID(env); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("seal", func(b *testing.B) {
		events := []*cairnv1.Event{benchEvent()}
		head := persistence.Head{N: env.N - 1, CID: env.Prev}
		b.ReportAllocs()
		for range b.N {
			if _, _, err := persistence.Seal(env.Graph, env.Tx, env.TS, head, events); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
}

// BenchmarkStoreRead reads a tail of 100 transactions and the whole of
// one graph of 20,000 small transactions as Read does (batched direct
// gets, a consumer past directMax) and with an ordered consumer only (as
// Read did before).
func BenchmarkStoreRead(b *testing.B) {
	srv := natstest.Start(b)
	st := srv.Store()
	ctx := context.Background()
	const n = 20_000
	var last uint64
	for i := range n {
		var err error
		if last, err = st.Append(ctx, "g", last, &cairnv1.Transaction{GraphId: "g", TxId: fmt.Sprintf("g-%d", i), Events: []*cairnv1.EventRecord{{DagCbor: make([]byte, 200)}}}); err != nil {
			b.Fatal(err)
		}
	}
	for _, want := range []int{100, n} {
		for _, direct := range []bool{true, false} {
			b.Run(fmt.Sprintf("%d/%s", want, map[bool]string{true: "read", false: "consumer"}[direct]), func(b *testing.B) {
				persistence.SetDirectReads(direct)
				defer persistence.SetDirectReads(true)
				for b.Loop() {
					k := 0
					if _, err := st.Read(ctx, "g", last-uint64(want)+1, func(persistence.Record) error { k++; return nil }); err != nil || k != want {
						b.Fatalf("read %d of %d: %v", k, want, err)
					}
				}
				b.ReportMetric(float64(want)*float64(b.N)/b.Elapsed().Seconds(), "tx/s")
			})
		}
	}
}
