package cluster

import (
	"fmt"
	"testing"

	"github.com/asynkron/protoactor-go/cluster"
)

func topology(ids ...string) *cluster.ClusterTopology {
	t := &cluster.ClusterTopology{}
	for i, id := range ids {
		t.Members = append(t.Members, &cluster.Member{Id: id, Host: "127.0.0.1", Port: int32(9000 + i), Kinds: []string{"graph"}})
	}
	return t
}

// Rendezvous placement spreads identities over the members, gives none to
// a member without the kind, and when a member leaves moves only the
// identities it owned.
func TestRendezvousOwner(t *testing.T) {
	three := newTable(topology("a", "b", "c"))
	two := newTable(topology("a", "b"))
	if three.owner("other-kind", "g") != nil {
		t.Fatal("an owner for a kind no member hosts")
	}
	per := map[string]int{}
	moved := 0
	const n = 3000
	for i := range n {
		id := fmt.Sprintf("graph-%d", i)
		o3, o2 := three.owner("graph", id).Id, two.owner("graph", id).Id
		per[o3]++
		if o3 != "c" && o3 != o2 {
			t.Fatalf("%s moved from %s to %s though its owner stayed", id, o3, o2)
		}
		if o3 == "c" {
			moved++
		}
	}
	for _, id := range []string{"a", "b", "c"} {
		if per[id] < n/3*8/10 || per[id] > n/3*12/10 {
			t.Fatalf("identities per member %v: not within 20%% of even", per)
		}
	}
	if moved != per["c"] {
		t.Fatalf("moved %d, c owned %d", moved, per["c"])
	}
}
