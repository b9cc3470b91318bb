package actors_test

import (
	"context"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/cairn-graph/cairn/actors"
	"github.com/cairn-graph/cairn/aggregate"
	"github.com/cairn-graph/cairn/persistence"
)

// A decoded aggregate state is taken only by an activation that names the
// same snapshot and trusts the key that signed it; whatever is taken or
// refused is gone (a second take finds nothing).
func TestWarmTakesOnlyTheSameTrustedSnapshot(t *testing.T) {
	seed, err := persistence.NewSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := persistence.NewSigner(seed)
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := persistence.NewKeyring(signer.KeyID())
	if err != nil {
		t.Fatal(err)
	}
	otherSeed, _ := persistence.NewSigningKey()
	other, _ := persistence.NewSigner(otherSeed)
	stranger, _ := persistence.NewKeyring(other.KeyID())

	local, err := persistence.OpenLocalSnapshots(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := aggregate.NewState("g")
	data, err := aggregate.Marshal(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	head, err := cid.Cast(persistence.EventCID([]byte("event 9")))
	if err != nil {
		t.Fatal(err)
	}
	info := persistence.SnapshotInfo{Kind: persistence.KindAggregate, Graph: "g", Seq: 4, Position: 9, Head: head, Format: actors.AggregateSnapshotFormat,
		Name: persistence.SnapshotName(persistence.KindAggregate, "g", 4), KeyID: signer.KeyID()}
	take := func(want persistence.SnapshotInfo, trust *persistence.Keyring) bool {
		if err := local.Save(context.Background(), info, data, nil); err != nil {
			t.Fatal(err)
		}
		w := actors.StartWarm(local, actors.WarmConfig{})
		defer w.Close()
		<-w.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _, ok := w.TakeAggregate(ctx, want, trust)
		if _, _, again := w.TakeAggregate(ctx, want, trust); again {
			t.Fatal("a decoded state was taken twice")
		}
		return ok
	}
	if !take(info, trusted) {
		t.Fatal("the same snapshot, signed by a trusted key: not taken")
	}
	if !take(info, nil) {
		t.Fatal("the same snapshot without signature checks: not taken")
	}
	if take(info, stranger) {
		t.Fatal("taken by a grain that does not trust the key that signed it")
	}
	newer := info
	newer.Seq, newer.Name = 5, persistence.SnapshotName(persistence.KindAggregate, "g", 5)
	if take(newer, trusted) {
		t.Fatal("a copy of seq 4 taken for the snapshot at seq 5")
	}
	otherHead := info
	otherHead.Position = 10
	if take(otherHead, trusted) {
		t.Fatal("a copy taken for a snapshot at another chain position")
	}
}
