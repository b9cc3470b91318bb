package actors

import "context"

// ShardStat is one projection shard's progress.
type ShardStat struct {
	// Applied: every transaction of the shard's graphs up to this stream
	// sequence is applied (or stopped its graph).
	Applied uint64
	// Transactions counts the transactions handed to the shard since
	// Start.
	Transactions uint64
}

// ShardStats returns each shard's progress, by shard number.
func (p *Projections) ShardStats() []ShardStat {
	out := make([]ShardStat, len(p.shards))
	for i, sh := range p.shards {
		out[i].Applied, _ = sh.position()
		out[i].Transactions = sh.txs.Load()
	}
	return out
}

// ReadModelSize is what the read models of the shards hold.
type ReadModelSize struct {
	Graphs, Nodes, Edges int64
}

// sizeRequest asks a shard for its ReadModelSize.
type sizeRequest struct{ reply chan ReadModelSize }

func (a *shardActor) size() ReadModelSize {
	var s ReadModelSize
	for _, e := range a.graphs {
		if e.g == nil {
			continue
		}
		n, m := e.g.Size()
		s.Graphs++
		s.Nodes += int64(n)
		s.Edges += int64(m)
	}
	return s
}

// ReadModelSize asks every shard what its read models hold, waiting at
// most until ctx ends for each (a shard busy applying a large transaction
// answers late); ok is false when a shard did not answer in time, and the
// sum then leaves it out.
func (p *Projections) ReadModelSize(ctx context.Context) (sum ReadModelSize, ok bool) {
	ok = true
	replies := make([]chan ReadModelSize, len(p.shards))
	for i, sh := range p.shards {
		replies[i] = make(chan ReadModelSize, 1)
		p.root.Send(sh.pid, &sizeRequest{reply: replies[i]})
	}
	for _, r := range replies {
		select {
		case s := <-r:
			sum.Graphs += s.Graphs
			sum.Nodes += s.Nodes
			sum.Edges += s.Edges
		case <-ctx.Done():
			ok = false
		}
	}
	return sum, ok
}
