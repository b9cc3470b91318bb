package layout

import (
	"math"
	"sync"
	"sync/atomic"
)

// sim runs ForceAtlas2 ticks on the active bodies act of a node set (x, y,
// m indexed by node). Bodies that are not active repel through the cold
// tree (nil: none), less the minus tree, plus the plus tree, which are
// built once a run; the active ones through the moving tree, rebuilt every
// tick. Attraction follows the CSR rows (one per active body, in act order)
// with weights w.
//
// Every active body's force is computed on its own (workers take blocks of
// bodies, in any order) and summed in a fixed order: cold, minus, plus and
// moving tree, attraction, gravity. The global speed is summed in act order
// on one goroutine. So the result does not depend on the number of workers.
type sim struct {
	p       *Params
	workers int

	x, y, m []float64
	act     []int32
	rows    []int32 // len(act)+1
	nbr     []int32
	w       []float64
	damp    []float64 // per active body: step factor (nil: 1)
	maxStep float64   // longest step of one body in one tick
	// rel marks active bodies that move by the change of their force since
	// the first tick (nil: none), so that a settled neighbourhood follows a
	// change without also running off along its leftover forces.
	rel    []bool
	bx, by []float64 // per active body: its first tick's force, when rel
	ticks  int       // ticks since reset

	cold                *tree
	own                 tree // the cold tree when the run builds its own
	minus, plus, moving tree

	fx, fy, ox, oy []float64 // force and previous force per active body
	swing, tract   []float64

	speed, eff float64

	at    []int32 // per node: its index in act (valid for active nodes)
	order []int32 // act indexes in the moving tree's (spatial) order
}

// reset prepares s for a run over its current act, rows, nbr and w.
func (s *sim) reset() {
	n := len(s.act)
	s.fx, s.fy = grow(s.fx, n), grow(s.fy, n)
	s.ox, s.oy = grow(s.ox, n), grow(s.oy, n)
	s.swing, s.tract = grow(s.swing, n), grow(s.tract, n)
	clear(s.ox)
	clear(s.oy)
	if s.rel != nil {
		s.bx, s.by = grow(s.bx, n), grow(s.by, n)
	}
	s.speed, s.eff, s.ticks = 1, 1, 0
	if len(s.at) < len(s.x) {
		s.at = append(s.at, make([]int32, len(s.x)-len(s.at))...)
	}
	for a, i := range s.act {
		s.at[i] = int32(a)
	}
}

func grow(s []float64, n int) []float64 {
	if cap(s) < n {
		return make([]float64, n)
	}
	return s[:n]
}

const block = 256 // bodies per unit of work handed to a worker

// tick computes the forces on every active body and moves it.
func (s *sim) tick() {
	n := len(s.act)
	if n == 0 {
		return
	}
	s.moving.build(s.act, s.x, s.y, s.m)
	// Work in the tree's order: neighbours in space share cache lines.
	// The order of work does not change any result.
	s.order = s.order[:0]
	for _, i := range s.moving.bid {
		s.order = append(s.order, s.at[i])
	}
	blocks := (n + block - 1) / block
	workers := min(s.workers, blocks)
	if workers <= 1 {
		for b := 0; b < blocks; b++ {
			s.forces(b*block, min(n, (b+1)*block))
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					b := int(next.Add(1)) - 1
					if b >= blocks {
						return
					}
					s.forces(b*block, min(n, (b+1)*block))
				}
			}()
		}
		wg.Wait()
	}
	s.move()
	s.ticks++
}

// forces computes fx, fy, swing and tract for active bodies order[lo:hi].
func (s *sim) forces(lo, hi int) {
	p := s.p
	kr, kg, theta2 := p.Repulsion, p.Gravity, float64(p.Theta*p.Theta)
	for _, a := range s.order[lo:hi] {
		i := s.act[a]
		xi, yi, mi := s.x[i], s.y[i], s.m[i]
		var fx, fy float64
		if s.cold != nil {
			fx, fy = s.cold.repel(i, xi, yi, mi, kr, theta2, fx, fy)
		}
		if len(s.minus.cells) > 0 {
			gx, gy := s.minus.repel(i, xi, yi, mi, kr, theta2, 0, 0)
			fx -= gx
			fy -= gy
		}
		fx, fy = s.plus.repel(i, xi, yi, mi, kr, theta2, fx, fy)
		fx, fy = s.moving.repel(i, xi, yi, mi, kr, theta2, fx, fy)
		for e := s.rows[a]; e < s.rows[a+1]; e++ {
			j := s.nbr[e]
			w := s.w[e]
			fx -= float64(w * (xi - s.x[j]))
			fy -= float64(w * (yi - s.y[j]))
		}
		if !p.WeakGravity {
			g := float64(kg * mi)
			fx -= float64(xi * g)
			fy -= float64(yi * g)
		} else if d := math.Sqrt(float64(xi*xi) + float64(yi*yi)); d > 0 {
			g := float64(kg*mi) / d
			fx -= float64(xi * g)
			fy -= float64(yi * g)
		}
		if s.rel != nil && s.rel[a] {
			if s.ticks == 0 {
				s.bx[a], s.by[a] = fx, fy
			}
			fx -= s.bx[a]
			fy -= s.by[a]
		}
		s.fx[a], s.fy[a] = fx, fy
		sx, sy := fx-s.ox[a], fy-s.oy[a]
		tx, ty := fx+s.ox[a], fy+s.oy[a]
		s.swing[a] = float64(mi * math.Sqrt(float64(sx*sx)+float64(sy*sy)))
		s.tract[a] = float64(mi*math.Sqrt(float64(tx*tx)+float64(ty*ty))) / 2
	}
}

// move adapts the global speed as ForceAtlas2 does (Jacomy et al. 2014,
// Gephi's implementation) and moves every active body, at most s.maxStep.
// A step that is not finite is dropped.
func (s *sim) move() {
	n := len(s.act)
	var swing, tract float64
	for a := range n {
		swing += s.swing[a]
		tract += s.tract[a]
	}
	tol := s.p.Tolerance
	if swing > 0 && tract > 0 {
		fn := float64(n)
		est := 0.05 * math.Sqrt(fn)
		jt := float64(tol * max(math.Sqrt(est), min(10, float64(est*tract)/float64(fn*fn))))
		if swing/tract > 2 {
			if s.eff > 0.05 {
				s.eff *= 0.5
			}
			jt = max(jt, tol)
		}
		target := float64(float64(jt*s.eff)*tract) / swing
		if swing > float64(jt*tract) {
			if s.eff > 0.05 {
				s.eff *= 0.7
			}
		} else if s.speed < 1000 {
			s.eff *= 1.3
		}
		s.speed += min(target-s.speed, float64(0.5*s.speed))
	}
	maxStep := s.maxStep
	for a := range n {
		i := s.act[a]
		fx, fy := s.fx[a], s.fy[a]
		f := s.speed / (1 + math.Sqrt(float64(s.speed*s.swing[a])))
		if s.damp != nil {
			f = float64(f * s.damp[a])
		}
		dx, dy := float64(fx*f), float64(fy*f)
		if d := math.Sqrt(float64(dx*dx) + float64(dy*dy)); d > maxStep {
			k := maxStep / d
			dx, dy = float64(dx*k), float64(dy*k)
		}
		if !isFinite(dx) || !isFinite(dy) {
			dx, dy = 0, 0
		}
		s.x[i] += dx
		s.y[i] += dy
		s.ox[a], s.oy[a] = fx, fy
	}
}

func isFinite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
