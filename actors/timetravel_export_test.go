package actors

import (
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
	"github.com/cairn-graph/cairn/readmodel"
)

// RunQuery answers req on g the way a projection shard does, with the
// default configuration: the time-travel tests compare views with a
// reference read model through it.
func RunQuery(g *readmodel.Graph, req *cairnv1.QueryRequest) *cairnv1.QueryReply {
	p := &Projections{cfg: DefaultProjectionConfig()}
	return p.run(g, req.GetGraphId(), req)
}

// SnapCacheKeeps adds payloads of the given sizes (graph "g", seq i+1) to
// a time-travel snapshot cache of limit bytes, reading back payload touch
// (when not negative) after each add, and reports which it still holds and
// their total size.
func SnapCacheKeeps(limit int64, sizes []int, touch int) ([]bool, int64) {
	c := newSnapCache(limit)
	for i, n := range sizes {
		c.add(snapKey{graph: "g", seq: uint64(i + 1)}, make([]byte, n))
		if touch >= 0 {
			c.get(snapKey{graph: "g", seq: uint64(touch + 1)})
		}
	}
	kept := make([]bool, len(sizes))
	for i := range sizes {
		kept[i] = c.get(snapKey{graph: "g", seq: uint64(i + 1)}) != nil
	}
	_, sum := c.stats()
	return kept, sum
}
