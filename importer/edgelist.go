package importer

import (
	"fmt"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// parseEdgeLine parses an edge list line, "source target [type]": fields
// separated by spaces or tabs; "#" comment lines and blank lines make no
// command. Every other byte belongs to an id.
func parseEdgeLine(check *checker, b []byte) (*cairnv1.Command, string) {
	var f [3][]byte
	n := 0
	for i := 0; i < len(b); {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		if i == len(b) {
			break
		}
		if n == 0 && b[i] == '#' {
			return nil, "" // a comment
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' {
			j++
		}
		if n == len(f) {
			return nil, "more than 3 fields; want 'source target [type]'"
		}
		f[n] = b[i:j]
		n++
		i = j
	}
	switch n {
	case 0:
		return nil, "" // blank
	case 1:
		return nil, fmt.Sprintf("one field %q; want 'source target [type]'", f[0])
	}
	return edgeRecord(check, "", string(f[0]), string(f[1]), string(f[2]), nil)
}
