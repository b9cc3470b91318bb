package cairn

import "runtime/debug"

// Version is this build of Cairn: the main module's version ("(devel)"
// for a build from a work tree) and, when the build recorded it, its
// Revision ("(devel) 7fb5609…-dirty"). The metrics' cairn_build_info and
// backups' backup.json carry it.
func Version() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v = bi.Main.Version
	}
	if rev := Revision(); rev != "" {
		v += " " + rev
	}
	return v
}

// Revision is the VCS revision the build recorded, with "-dirty" for
// uncommitted changes; "" when it recorded none (go test, go run).
func Revision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev string
	var dirty bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev != "" && dirty {
		rev += "-dirty"
	}
	return rev
}
