package bench

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the child killed when this process dies, so that a
// harness killed (a test's timeout, SIGKILL) leaves no cairn serve
// behind: an orphaned cluster member kept heartbeating and loading the
// machine for as long as nobody found it.
func dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
