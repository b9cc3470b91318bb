package actors_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/cairn-graph/cairn/internal/cmdtest"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/persistence"
)

// TestSignedGrainHistory: a grain with a signer signs every transaction it
// appends, and its snapshots are signed; a snapshot whose payload is
// replaced by an older one's (metadata kept) is passed over and counted,
// so the grain never decides on the forged state; a forged transaction on
// the graph's subject stops the next activation.
func TestSignedGrainHistory(t *testing.T) {
	ctx := context.Background()
	seed, err := persistence.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := persistence.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	trust, err := persistence.NewKeyring(signer.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	srv, store := newStore(t)
	scfg := persistence.DefaultSnapshotConfig()
	scfg.Signer, scfg.Trust = signer, trust
	snaps, err := persistence.OpenSnapshots(ctx, srv.JetStream(), scfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := snapGrains(snaps, 1_000_000)
	cfg.Signer, cfg.Trust = signer, trust
	m := startMember(t, store, cfg)
	const graph = "g"
	m.mustExec(cmdtest.Envelope(graph, "c0", cmdtest.CreateGraph()))
	var goods []persistence.SnapshotInfo
	for round := range 2 {
		for i := range 3 {
			m.mustExec(cmdtest.Envelope(graph, fmt.Sprint("r", round, "-", i), cmdtest.AddNode(fmt.Sprint("n", round, "-", i))))
		}
		m.idle()
		infos, err := snaps.List(ctx, persistence.KindAggregate, graph)
		if err != nil || len(infos) != round+1 {
			t.Fatalf("after round %d: %d snapshots (%v)", round, len(infos), err)
		}
		if infos[0].KeyID != signer.KeyID() {
			t.Errorf("snapshot %s signed by %q, want %q", infos[0].Name, infos[0].KeyID, signer.KeyID())
		}
		goods = append(goods, infos[0])
	}
	recs := readGraph(t, store, graph)
	chain := persistence.NewChain(graph, persistence.WithTrust(trust))
	for _, r := range recs {
		if r.Tx.GetKeyId() != signer.KeyID() || len(r.Tx.GetSignature()) == 0 {
			t.Fatalf("seq %d: key id %q, %d signature bytes; want signed by the grain's key", r.Seq, r.Tx.GetKeyId(), len(r.Tx.GetSignature()))
		}
		if _, err := chain.Check(r.Seq, r.Tx); err != nil {
			t.Fatalf("signed history: %v", err)
		}
	}

	// Forged snapshot: the newest's payload replaced by the older's, a
	// valid state of the same graph without round 1's nodes.
	older, err := snaps.Objects().GetBytes(ctx, goods[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	rawPut(t, snaps.Objects(), goods[1], older)
	before := m.grains.Stats()
	rep := m.exec(cmdtest.Envelope(graph, "again", cmdtest.AddNode("n1-0")))
	wantRefused(t, rep, cairnv1.ErrorCode_ERROR_CODE_ALREADY_EXISTS, "commands[0].add_node.node_id")
	if st := statsDelta(m.grains.Stats(), before); st.SnapshotFallbacks != 1 || st.SnapshotLoads != 1 {
		t.Errorf("stats %+v; want the forged snapshot passed over and the older one loaded", st)
	}

	// Forged transaction: chained onto the head, unsigned, published
	// straight to the stream.
	m.idle()
	head := chain.Head()
	forged := &cairnv1.Event{Kind: &cairnv1.Event_NodeAdded{NodeAdded: &cairnv1.NodeAdded{NodeId: "evil"}}}
	txID := "forged-tx"
	ts := time.Now().UnixNano()
	recsF, _, err := persistence.Seal(graph, txID, ts, head, []*cairnv1.Event{forged})
	if err != nil {
		t.Fatal(err)
	}
	tx := &cairnv1.Transaction{GraphId: graph, TxId: txID, TimestampUnixNano: ts, Events: recsF,
		Commands: []*cairnv1.CommandRecord{{CommandId: "evil", Issuer: "attacker", EventCount: 1}}}
	data, err := proto.Marshal(tx)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := srv.JetStream().Publish(ctx, store.Subject(graph), data)
	if err != nil {
		t.Fatal(err)
	}
	rep = m.exec(cmdtest.Envelope(graph, "after", cmdtest.AddNode("after")))
	if rep.GetError() == nil || !strings.Contains(rep.GetError().GetMessage(), "signature missing") ||
		!strings.Contains(rep.GetError().GetMessage(), fmt.Sprint("seq ", ack.Sequence)) {
		t.Fatalf("a write after a forged transaction: %v; want refused naming the signature and seq %d", rep, ack.Sequence)
	}
}
