package actors

import "github.com/cairn-graph/cairn/api"

// Health returns the grains' counters (Stats) in the form the gateway
// reports.
func (k *GraphGrains) Health() api.GrainHealth {
	s := k.Stats()
	h := api.GrainHealth{
		Active: k.Active(), Activations: s.Activations,
		SnapshotLoads: s.SnapshotLoads, SnapshotFallbacks: s.SnapshotFallbacks,
		SnapshotsWritten: s.SnapshotsWritten, SnapshotWriteErrors: s.SnapshotWriteErrors, SnapshotBytes: s.SnapshotBytes,
		SnapshotBlockMsTotal: ms(s.EncodeTotal), SnapshotBlockMsMax: ms(s.EncodeMax),
		ReplayedTransactions: s.ReplayedTransactions, ReplayedEvents: s.ReplayedEvents,
		AppendConflicts: s.AppendConflicts,
		ActivationWaits: s.ActivationWaits, ActivationsAtOnce: s.ActivationsAtOnce,
		Quarantined: s.Quarantined,
	}
	if w := k.warm; w != nil {
		wh := w.Health()
		h.Warm = &wh
	}
	return h
}
