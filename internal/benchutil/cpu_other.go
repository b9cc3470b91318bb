//go:build !unix

package benchutil

import "time"

// CPUTime returns the user plus system CPU time this process has used so
// far, and false where the platform does not say.
func CPUTime() (time.Duration, bool) { return 0, false }
