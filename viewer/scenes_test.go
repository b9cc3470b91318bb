package viewer

import (
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cairn-graph/cairn/viewer/scene"
)

// testNode is one node of a hand-built scene.
type testNode struct {
	x, y  float32
	color uint32
	size  float32
	deg   uint32
}

// buildFrame makes a Full frame from nodes and edges (pairs of slots).
func buildFrame(nodes []testNode, edges [][2]uint32) *scene.Frame {
	f := &scene.Frame{Graph: "test", Seq: 7, Head: "bafytesthead", Full: true}
	for i, n := range nodes {
		f.Pos = append(f.Pos, n.x, n.y)
		f.Color = append(f.Color, n.color)
		f.Size = append(f.Size, n.size)
		id := ""
		if n.size > 0 {
			id = fmt.Sprintf("n%d", i)
			f.LiveNodes++
		}
		f.ID = append(f.ID, id)
		f.Deg = append(f.Deg, n.deg)
	}
	f.Nodes = len(nodes)
	for _, e := range edges {
		f.Ends = append(f.Ends, e[0], e[1])
		if e[0] != e[1] {
			f.LiveEdges++
		}
	}
	f.Edges = len(edges)
	return f
}

const (
	red   = 0xff3030e0
	green = 0xff40c040
	blue  = 0xffe08030
	white = 0xffffffff
)

// triangleScene: three nodes in a triangle, joined, and a hidden fourth
// slot in the middle (size 0).
func triangleScene() *scene.Frame {
	return buildFrame([]testNode{
		{-50, -40, red, 24, 2},
		{50, -40, green, 24, 2},
		{0, 45, blue, 24, 2},
		{0, 0, white, 0, 0},
	}, [][2]uint32{{0, 1}, {1, 2}, {2, 0}, {3, 3}})
}

// randomScene has n nodes spread over a square of side 1000 and m edges
// between near neighbours in slot order (short edges) when short, else
// between random slots; seeded.
func randomScene(n, m int, short bool, seed uint64) *scene.Frame {
	rng := rand.New(rand.NewPCG(seed, 1))
	f := &scene.Frame{Graph: "bench", Seq: 1, Head: "bafybench", Full: true, Nodes: n, Edges: m}
	f.Pos = make([]float32, 2*n)
	f.Color = make([]uint32, n)
	f.Size = make([]float32, n)
	f.ID = make([]string, n)
	f.Deg = make([]uint32, n)
	palette := []uint32{red, green, blue, 0xff30c0e0, 0xffc040c0}
	// Nodes on a jittered grid so that slot neighbours are space neighbours.
	side := 1
	for side*side < n {
		side++
	}
	cell := float32(1000) / float32(side)
	for s := 0; s < n; s++ {
		f.Pos[2*s] = (float32(s%side)+rng.Float32())*cell - 500
		f.Pos[2*s+1] = (float32(s/side)+rng.Float32())*cell - 500
		f.Color[s] = palette[s%len(palette)]
		f.Size[s] = 3 + 4*rng.Float32()
		f.ID[s] = fmt.Sprintf("node-%d", s)
	}
	f.Ends = make([]uint32, 2*m)
	for e := 0; e < m; e++ {
		a := rng.IntN(n)
		var b int
		if short {
			b = a + 1 + rng.IntN(2)
			if rng.IntN(2) == 0 {
				b = a + side
			}
			b %= n
		} else {
			b = rng.IntN(n)
		}
		f.Ends[2*e], f.Ends[2*e+1] = uint32(a), uint32(b)
		f.Deg[a]++
		f.Deg[b]++
	}
	f.LiveNodes, f.LiveEdges = n, m
	return f
}

// inCI reports whether the tests run in CI, where a missing GL, EGL or
// display fails instead of skipping.
func inCI() bool { return os.Getenv("CI") == "true" }

// missing fails the test in CI and skips it elsewhere, naming what is
// missing.
func missing(t testing.TB, what string, err error) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s (CI=true: a missing dependency fails): %v", what, err)
	}
	t.Skipf("%s, skipped outside CI: %v", what, err)
}

func readPNG(path string) (*image.RGBA, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := png.Decode(f)
	if err != nil {
		return nil, err
	}
	rgba := image.NewRGBA(m.Bounds())
	for y := m.Bounds().Min.Y; y < m.Bounds().Max.Y; y++ {
		for x := m.Bounds().Min.X; x < m.Bounds().Max.X; x++ {
			rgba.Set(x, y, m.At(x, y))
		}
	}
	return rgba, nil
}
