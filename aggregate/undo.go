package aggregate

// undoRec records one change Apply made while recording, enough to revert
// it: small records in one slice instead of a closure each.
type undoRec struct {
	op  undoOp
	idx uint32 // node or edge index
	a   uint32 // opNodeChanged: the node's set before (+1)
	s   string // opNodeRemoved, opEdgeRemoved: the id
}

type undoOp uint8

const (
	opCreated undoOp = iota + 1
	opDeleted
	opNodeAdded
	opNodeChanged
	opNodeRemoved
	opEdgeAdded
	opEdgeRemoved
)

// log records r while recording.
func (s *State) log(r undoRec) {
	if s.recording {
		s.undo = append(s.undo, r)
	}
}

// Begin starts recording changes for rollback. While recording, indices and
// stored keys that removals free are kept until Commit, so that Rollback
// can restore them exactly.
func (s *State) Begin() {
	s.recording = true
	s.undo = s.undo[:0]
}

// Recording reports whether Begin was called without Commit since.
func (s *State) Recording() bool { return s.recording }

// Mark returns a rollback point inside the current recording.
func (s *State) Mark() int { return len(s.undo) }

// Rollback reverts every change recorded after mark m, newest first.
func (s *State) Rollback(m int) {
	for i := len(s.undo) - 1; i >= m; i-- {
		s.revert(&s.undo[i])
		s.undo[i] = undoRec{}
	}
	s.undo = s.undo[:m]
}

// Commit stops recording and keeps the changes: the indices removals freed
// become reusable and keys no longer referenced are deleted.
func (s *State) Commit() {
	for i := range s.undo {
		switch r := &s.undo[i]; r.op {
		case opNodeRemoved:
			s.freeNode(r.idx)
		case opEdgeRemoved:
			s.freeEdge(r.idx)
		}
		s.undo[i] = undoRec{}
	}
	s.undo = s.undo[:0]
	if cap(s.undo) > 1<<16 {
		s.undo = nil // let a huge batch's log go
	}
	s.recording = false
	s.nsets.settle()
	s.esets.settle()
	s.comps.settle()
}

func (s *State) revert(r *undoRec) {
	switch r.op {
	case opCreated:
		s.created, s.typ, s.metadata, s.rules = false, "", nil, nil
	case opDeleted:
		s.deleted = false
	case opNodeAdded:
		u := r.idx
		s.holdSet(&s.nsets, s.nodeSet.Get(int(u)), true, false)
		s.nodeSet.Set(int(u), 0)
		s.nodes.Delete(u)
		s.freeNodes = append(s.freeNodes, u)
		s.nNodes--
	case opNodeChanged:
		u := r.idx
		s.holdSet(&s.nsets, r.a, true, true)
		s.holdSet(&s.nsets, s.nodeSet.Get(int(u)), true, false)
		s.nodeSet.Set(int(u), r.a)
	case opNodeRemoved:
		s.nodes.Set(r.idx, r.s)
		s.holdSet(&s.nsets, s.nodeSet.Get(int(r.idx)), true, true)
		s.nNodes++
	case opEdgeAdded:
		e := r.idx
		su, du := s.src.Get(int(e)), s.dst.Get(int(e))
		if du != su {
			s.unlink(e, du)
		}
		s.unlink(e, su)
		s.holdSet(&s.esets, s.edgeSet.Get(int(e)), false, false)
		s.edgeSet.Set(int(e), 0)
		s.edges.Delete(e)
		s.freeEdges = append(s.freeEdges, e)
		s.nEdges--
	case opEdgeRemoved:
		e := r.idx
		s.edges.Set(e, r.s)
		s.holdSet(&s.esets, s.edgeSet.Get(int(e)), false, true)
		su, du := s.src.Get(int(e)), s.dst.Get(int(e))
		if du != su {
			s.relink(e, du)
		}
		s.relink(e, su)
		s.nEdges++
	}
}
