package aggregate

import "slices"

// cycleThrough returns the cycle an edge from source to target would close
// (target, ..., source, target: a path of existing edges from target to
// source, then the new edge back), or nil when it would close none. A
// self-loop closes the cycle source → source.
//
// It walks the outgoing edges of the incidence lists depth first from
// target, visiting each node once and each list entry at most once (a list
// holds a node's incoming edges too, which it skips): time and memory
// bounded by the graph's size, and nothing when target has no way out.
func (s *State) cycleThrough(source, target string) []string {
	su, ok1 := s.nodes.Lookup(source)
	tu, ok2 := s.nodes.Lookup(target)
	if !ok1 || !ok2 {
		return nil
	}
	if su == tu {
		return []string{source, source}
	}
	parent := map[uint32]uint32{tu: tu} // visited node -> the node it was reached from
	stack := []uint32{tu}
	for len(stack) > 0 && len(parent) <= s.nNodes {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for e, n := s.first.Get(int(u)), 0; e != 0 && n <= s.nEdges; e, n = s.nextOf(e-1, u), n+1 {
			if s.src.Get(int(e-1)) != u {
				continue // an edge into u
			}
			v := s.dst.Get(int(e - 1))
			if _, seen := parent[v]; seen {
				continue
			}
			parent[v] = u
			if v == su {
				path := []string{target}
				for w := v; w != tu; w = parent[w] {
					path = append(path, s.nodes.String(w))
				}
				slices.Reverse(path[1:])
				return append(path, target)
			}
			stack = append(stack, v)
		}
	}
	return nil
}
