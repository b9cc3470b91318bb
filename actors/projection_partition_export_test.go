package actors

// SetAdoptGate makes every adoption under p call gate with its graph as
// it starts its load (after taking its turn).
func SetAdoptGate(p *Partition, gate func(graph string)) { p.adoptGate = gate }
