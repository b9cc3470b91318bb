package actors

// GrainHealth is the graph grains' counters as the gateway's command
// endpoint reports them in its stats (`nats micro stats cairn`,
// `cairn health`).
type GrainHealth struct {
	// Active counts the grains active on this member now.
	Active               int     `json:"active"`
	Activations          uint64  `json:"activations"`
	SnapshotLoads        uint64  `json:"snapshot_loads"`
	SnapshotFallbacks    uint64  `json:"snapshot_fallbacks"`
	SnapshotsWritten     uint64  `json:"snapshots_written"`
	SnapshotWriteErrors  uint64  `json:"snapshot_write_errors"`
	SnapshotBytes        uint64  `json:"snapshot_bytes"`
	SnapshotBlockMsTotal float64 `json:"snapshot_block_ms_total"`
	SnapshotBlockMsMax   float64 `json:"snapshot_block_ms_max"`
	ReplayedTransactions uint64  `json:"replayed_transactions"`
	ReplayedEvents       uint64  `json:"replayed_events"`
}

// Health returns the grains' counters (Stats) in the form the gateway
// reports.
func (k *GraphGrains) Health() GrainHealth {
	s := k.Stats()
	return GrainHealth{
		Active: k.Active(), Activations: s.Activations,
		SnapshotLoads: s.SnapshotLoads, SnapshotFallbacks: s.SnapshotFallbacks,
		SnapshotsWritten: s.SnapshotsWritten, SnapshotWriteErrors: s.SnapshotWriteErrors, SnapshotBytes: s.SnapshotBytes,
		SnapshotBlockMsTotal: ms(s.EncodeTotal), SnapshotBlockMsMax: ms(s.EncodeMax),
		ReplayedTransactions: s.ReplayedTransactions, ReplayedEvents: s.ReplayedEvents,
	}
}

// CommandStats is the data of the gateway's command endpoint in the
// service's stats (`nats micro stats cairn`): the grains' counters, when
// the gateway has grains, flattened, and the engine process's memory under
// "memory".
type CommandStats struct {
	*GrainHealth
	Memory MemoryHealth `json:"memory"`
}
