package cairn

// ForceMetaLeader makes e act as if its embedded NATS node led the
// JetStream meta group (keepStreamOffMeta), which a test cannot arrange.
func ForceMetaLeader(e *Engine) {
	f := func() bool { return true }
	e.metaLeader.Store(&f)
}
