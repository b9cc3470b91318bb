//go:build !linux

package bench

import "os/exec"

// dieWithParent does nothing where the OS cannot tie a child's life to
// its parent's.
func dieWithParent(*exec.Cmd) {}
