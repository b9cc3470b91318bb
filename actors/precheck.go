package actors

import (
	"sync"

	"github.com/cairn-graph/cairn/persistence"
)

// precheck is the chain check and decoding of one delivered transaction
// (decodeChecked), started on the projections' worker pool when the reader
// hands the transaction to its shard, so that it runs beside the shard
// rather than inside it: the check was about half of a shard's time per
// transaction (BenchmarkProjection's profile), and a query waits in the
// shard's mailbox behind every transaction queued before it. The shard
// takes the result when it reaches the transaction (result), running the
// check itself if no worker has started it yet and waiting for it if one
// is running; it then checks the link to its graph's head itself (linksTo),
// as checkTx would. Nothing about the check is trusted less or skipped: it
// is the same function of the same transaction, run earlier.
type precheck struct {
	once  sync.Once
	trust *persistence.Keyring
	f     persistence.Followed
	d     decodedTx
	err   error
}

// precheckQueued is the most events a shard may have queued for a
// transaction handed to it to be prechecked. Behind a longer queue the
// shard is catching up, where the decoded events of every queued
// transaction would be held in memory for longer than the check saves; it
// then checks them itself, as before.
const precheckQueued = 4096

// newPrecheck returns f's precheck, already handed to pool, or nil when f
// is not decoded (a partitioned engine's raw delivery, decoded by the
// shard that owns its graph) or failed to decode.
func newPrecheck(pool interface{ Go(func()) }, trust *persistence.Keyring, f persistence.Followed) *precheck {
	if f.Tx == nil || f.Err != nil {
		return nil
	}
	pc := &precheck{trust: trust, f: f}
	pool.Go(func() { pc.once.Do(pc.run) })
	return pc
}

func (pc *precheck) run() {
	pc.d, pc.err = decodeChecked(pc.trust, pc.f.Graph, pc.f.Seq, pc.f.Tx)
}

// result returns what decodeChecked returns for the transaction, waiting
// for a check in progress or running it here.
func (pc *precheck) result() (decodedTx, error) {
	pc.once.Do(pc.run)
	return pc.d, pc.err
}
