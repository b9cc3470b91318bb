package viewer

import (
	"fmt"
	"image"
)

// Tolerance says how far a rendered image may stray from a golden one.
// A pixel matches when some golden pixel within Radius of it (a square
// neighbourhood) differs by at most MaxDelta in every channel; the images
// match when at most MaxShare of the pixels do not.
type Tolerance struct {
	MaxDelta uint8   // per channel
	Radius   int     // search radius in pixels
	MaxShare float64 // share of pixels allowed out, 0..1
}

// DefaultTolerance absorbs rasteriser rounding on llvmpipe: 8 per channel,
// a 1-pixel search radius and 0.2 % of pixels out.
var DefaultTolerance = Tolerance{MaxDelta: 8, Radius: 1, MaxShare: 0.002}

// Diff is the result of CompareImages.
type Diff struct {
	Pixels int     // pixels compared
	Out    int     // pixels with no match
	Share  float64 // Out / Pixels
	OK     bool    // Share within the tolerance
	// First is the first pixel out (row order), valid when Out > 0.
	First image.Point
}

// String reports the diff in one line.
func (d Diff) String() string {
	if d.Out == 0 {
		return fmt.Sprintf("all %d pixels match", d.Pixels)
	}
	return fmt.Sprintf("%d of %d pixels out (%.3f%%), first at %v", d.Out, d.Pixels, 100*d.Share, d.First)
}

// CompareImages compares got with want under tol. Images of different
// sizes give an error.
func CompareImages(got, want *image.RGBA, tol Tolerance) (Diff, error) {
	gb, wb := got.Bounds(), want.Bounds()
	if gb.Dx() != wb.Dx() || gb.Dy() != wb.Dy() {
		return Diff{}, fmt.Errorf("compare images: size %dx%d, want %dx%d", gb.Dx(), gb.Dy(), wb.Dx(), wb.Dy())
	}
	w, h := gb.Dx(), gb.Dy()
	d := Diff{Pixels: w * h}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			g := got.Pix[y*got.Stride+4*x:]
			if !matchNear(g[:4], want, x, y, tol) {
				if d.Out == 0 {
					d.First = image.Pt(x, y)
				}
				d.Out++
			}
		}
	}
	if d.Pixels > 0 {
		d.Share = float64(d.Out) / float64(d.Pixels)
	}
	d.OK = d.Share <= tol.MaxShare
	return d, nil
}

// matchNear reports whether some pixel of want within tol.Radius of (x, y)
// is within tol.MaxDelta of g in every channel.
func matchNear(g []uint8, want *image.RGBA, x, y int, tol Tolerance) bool {
	b := want.Bounds()
	for dy := -tol.Radius; dy <= tol.Radius; dy++ {
		yy := y + dy
		if yy < 0 || yy >= b.Dy() {
			continue
		}
		for dx := -tol.Radius; dx <= tol.Radius; dx++ {
			xx := x + dx
			if xx < 0 || xx >= b.Dx() {
				continue
			}
			p := want.Pix[yy*want.Stride+4*xx:]
			if near(g[0], p[0], tol.MaxDelta) && near(g[1], p[1], tol.MaxDelta) &&
				near(g[2], p[2], tol.MaxDelta) && near(g[3], p[3], tol.MaxDelta) {
				return true
			}
		}
	}
	return false
}

func near(a, b, d uint8) bool {
	if a > b {
		return a-b <= d
	}
	return b-a <= d
}
