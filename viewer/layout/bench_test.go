package layout

import "testing"

// BenchmarkRelax100K times one global iteration on 100K nodes / 200K edges
// after a first layout (the goal: ≤ 150 ms on 2 cores).
func BenchmarkRelax100K(b *testing.B) {
	g := genGraph(1, 100_000, 200_000)
	l := newLayout(b, 1)
	g.load(l)
	l.Relax(5)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		l.Relax(1)
	}
}
