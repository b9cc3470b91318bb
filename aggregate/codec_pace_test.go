package aggregate_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// MarshalPaced steps within the idempotency window's replies too, not only
// between arrays: a full default window (10,000 replies) was one piece of
// about 15 ms. The bytes stay Marshal's.
func TestMarshalPacedStepsThroughReplies(t *testing.T) {
	s := aggregate.NewState("g")
	f, err := s.Freeze()
	if err != nil {
		t.Fatal(err)
	}
	count := func(replies []*cairnv1.CommandReply) (int, []byte) {
		steps := 0
		data, err := f.MarshalPaced(replies, func() { steps++ })
		if err != nil {
			t.Fatal(err)
		}
		if plain, err := f.Marshal(replies); err != nil || !bytes.Equal(plain, data) {
			t.Fatalf("MarshalPaced gives other bytes than Marshal (err %v)", err)
		}
		return steps, data
	}
	none, _ := count(nil)
	replies := make([]*cairnv1.CommandReply, 4096)
	for i := range replies {
		replies[i] = &cairnv1.CommandReply{CommandId: fmt.Sprintf("c%d", i), Seq: uint64(i + 1), TxId: fmt.Sprintf("tx%d", i)}
	}
	w := aggregate.NewWindow(len(replies))
	for _, r := range replies {
		w.Put(r)
	}
	some, data := count(replies)
	if some-none < len(replies)/512 {
		t.Fatalf("%d steps with %d replies, %d without: want at least one more per 512 replies", some, len(replies), none)
	}
	if want, err := aggregate.Marshal(s, w); err != nil || !bytes.Equal(want, data) {
		t.Fatalf("MarshalPaced with the window's replies gives other bytes than Marshal (err %v)", err)
	}
}
