package persistence

// SetDirectReads turns direct-get reads on or off, for benchmarks that
// compare them with a consumer's.
func SetDirectReads(on bool) { noDirectReads = !on }

// SetPullResetHook calls hook with the reason of each reset of a reader's
// consumer (nil: none); it returns the function that restores the last.
func SetPullResetHook(hook func(why error)) (restore func()) {
	old := pullResetHook
	pullResetHook = hook
	return func() { pullResetHook = old }
}

// ErrPullReconnected is the reason of a reset after a reconnect.
var ErrPullReconnected = errPullReconnected
