package cluster

import "time"

// PauseHeartbeat suspends the member's heartbeats for d, as a stopped
// process would miss them.
func (m *Member) PauseHeartbeat(d time.Duration) {
	m.kv.pause.Store(time.Now().Add(d).UnixNano())
}
