package cluster

import "time"

// Kill stops the member the way a crash would: its heartbeat and watcher
// stop without deleting its key, and its actor system and remote endpoint
// stop without a hand-over. Close the member's NATS connection too.
func (m *Member) Kill() {
	if m.kv != nil {
		_ = m.kv.Shutdown(false)
	}
	m.cluster.Shutdown(false)
	<-m.started
}

// PauseHeartbeat suspends the member's heartbeats for d, as a stopped
// process would miss them.
func (m *Member) PauseHeartbeat(d time.Duration) {
	m.kv.pause.Store(time.Now().Add(d).UnixNano())
}
