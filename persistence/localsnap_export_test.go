package persistence

// SetPackMax sets the size past which l starts a new pack, so that tests
// see packs rotate and be cleaned without writing 64 MiB.
func (l *LocalSnapshots) SetPackMax(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.packMax = n
}

// Packs returns the sizes of l's packs by generation and the bytes of
// their live records.
func (l *LocalSnapshots) Packs() (sizes map[uint64]int64, live int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	sizes = map[uint64]int64{}
	for gen, p := range l.packs {
		sizes[gen] = p.size
		live += p.live
	}
	return sizes, live
}
