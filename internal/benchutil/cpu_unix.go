//go:build unix

package benchutil

import (
	"syscall"
	"time"
)

// CPUTime returns the user plus system CPU time this process has used so
// far, and false where the platform does not say.
func CPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
