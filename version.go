package cairn

import "runtime/debug"

// Version is this build of Cairn: the main module's version ("(devel)"
// for a build from a work tree) and, when the build recorded it, the VCS
// revision, with "-dirty" for uncommitted changes ("(devel) 7fb5609…-dirty").
// The metrics' cairn_build_info and backups' backup.json carry it.
func Version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	if v == "" {
		v = "unknown"
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
	if rev != "" {
		v += " " + rev
		if dirty {
			v += "-dirty"
		}
	}
	return v
}
