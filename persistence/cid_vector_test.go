package persistence_test

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// The CIDs below pin the event envelope format: they were computed once with
// go-ipld-prime and pasted in. If one changes, every stored chain changes
// with it; a new format needs a new envelope version, not a new literal.
const (
	vectorGraph = "g1"
	vectorTx    = "tx-0001"
	vectorTS    = int64(1_700_000_000_000_000_000)

	// Event 1: GraphCreated{graph_id: "g1", graph_type: "test"}.
	vectorBody1 = "0a0a0a026731120474657374"
	vectorCID1  = "bafyreib272gzrewg5safeipevoc4mnchxmstkp6spflcq7rfa5ieu52bou"
	// Event 2: NodeAdded{node_id: "a"}, prev = event 1.
	vectorBody2 = "12030a0161"
	vectorCID2  = "bafyreia6ho27eyz5eqx7fzcgqyui2reia4m74u62f7j3dx2djkfvonozku"
)

func vectorEvents() []*cairnv1.Event {
	return []*cairnv1.Event{
		{Kind: &cairnv1.Event_GraphCreated{GraphCreated: &cairnv1.GraphCreated{GraphId: "g1", GraphType: "test"}}},
		{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "a"}}},
	}
}

func TestCIDVector(t *testing.T) {
	evs := vectorEvents()
	recs, head, err := persistence.Seal(vectorGraph, vectorTx, vectorTS, persistence.Head{}, evs)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if len(recs) != 2 {
		t.Fatalf("Seal returned %d records, want 2", len(recs))
	}

	cases := []struct {
		name    string
		n       uint64
		typ     string
		bodyHex string
		wantCID string
		prevCID string // "" for the first event
		ev      *cairnv1.Event
		sealed  *cairnv1.EventRecord
	}{
		{name: "first event", n: 1, typ: "GraphCreated", bodyHex: vectorBody1, wantCID: vectorCID1, ev: evs[0], sealed: recs[0]},
		{name: "second event", n: 2, typ: "NodeAdded", bodyHex: vectorBody2, wantCID: vectorCID2, prevCID: vectorCID1, ev: evs[1], sealed: recs[1]},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := hex.DecodeString(tc.bodyHex)
			if err != nil {
				t.Fatal(err)
			}
			// The body is the deterministic protobuf encoding of the event.
			pb, err := proto.MarshalOptions{Deterministic: true}.Marshal(tc.ev)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(pb, body) {
				t.Fatalf("event body = %x, want %s", pb, tc.bodyHex)
			}
			env := persistence.Envelope{
				Version: 1, Graph: vectorGraph, N: tc.n, Type: tc.typ,
				Tx: vectorTx, TS: vectorTS, Body: body,
			}
			if tc.prevCID != "" {
				env.Prev = mustCID(t, tc.prevCID)
			}

			// Reference: go-ipld-prime builds, encodes and hashes.
			refBytes, err := ipldEncode(env)
			if err != nil {
				t.Fatalf("go-ipld-prime encode: %v", err)
			}
			refCID, err := ipldCID(env)
			if err != nil {
				t.Fatalf("go-ipld-prime link: %v", err)
			}
			if got := refCID.String(); got != tc.wantCID {
				t.Errorf("go-ipld-prime CID = %s, want pinned %s", got, tc.wantCID)
			}
			// Hashing the reference bytes gives the reference link.
			sum, err := eventLinkProto.Prefix.Sum(refBytes)
			if err != nil {
				t.Fatal(err)
			}
			if !sum.Equals(refCID) {
				t.Errorf("hash of encoded bytes %s != link system CID %s", sum, refCID)
			}

			// This package: AppendEncode + EventCID, and Seal.
			enc := env.AppendEncode(nil)
			if !bytes.Equal(enc, refBytes) {
				t.Errorf("AppendEncode =\n%x\ngo-ipld-prime =\n%x", enc, refBytes)
			}
			if got := cidOf(t, persistence.EventCID(enc)); got != tc.wantCID {
				t.Errorf("EventCID = %s, want pinned %s", got, tc.wantCID)
			}
			if got := cidOf(t, tc.sealed.GetCid()); got != tc.wantCID {
				t.Errorf("Seal CID = %s, want pinned %s", got, tc.wantCID)
			}
			if !bytes.Equal(tc.sealed.GetDagCbor(), refBytes) {
				t.Errorf("Seal dag_cbor =\n%x\ngo-ipld-prime =\n%x", tc.sealed.GetDagCbor(), refBytes)
			}
		})
	}
	if head.N != 2 || head.CID.String() != vectorCID2 {
		t.Errorf("Seal head = {%d %s}, want {2 %s}", head.N, head.CID, vectorCID2)
	}
}

func mustCID(t testing.TB, s string) cid.Cid {
	t.Helper()
	c, err := cid.Decode(s)
	if err != nil {
		t.Fatalf("decode CID %q: %v", s, err)
	}
	return c
}

// cidOf renders binary CID bytes as a string, failing when they do not parse
// or carry trailing bytes.
func cidOf(t testing.TB, b []byte) string {
	t.Helper()
	n, c, err := cid.CidFromBytes(b)
	if err != nil {
		t.Fatalf("CID bytes %x: %v", b, err)
	}
	if n != len(b) {
		t.Fatalf("CID bytes %x: %d trailing bytes", b, len(b)-n)
	}
	return c.String()
}

// CIDString writes what go-cid's String writes: the pinned vectors, a CID
// of other codecs (v1) and a CIDv0, which keeps go-cid's base58.
func TestCIDString(t *testing.T) {
	v0, err := cid.Decode("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n")
	if err != nil {
		t.Fatal(err)
	}
	raw := cid.NewCidV1(cid.Raw, v0.Hash())
	for _, c := range []cid.Cid{mustCID(t, vectorCID1), mustCID(t, vectorCID2), v0, raw} {
		if got, want := persistence.CIDString(c), c.String(); got != want {
			t.Errorf("CIDString = %q, want %q", got, want)
		}
	}
	c := mustCID(t, vectorCID1)
	if got := testing.AllocsPerRun(100, func() { _ = persistence.CIDString(c) }); got != 1 {
		t.Errorf("CIDString: %v allocations, want 1", got)
	}
}
