package scene

import (
	"hash/fnv"
	"math"
)

// palette holds the node colours, RGBA8 with R in the low byte, opaque:
// twelve colours that stay distinguishable on a dark background (after
// Tableau's 10 and ColorBrewer's Paired). A category or component value
// hashes to one of them.
var palette = [...]uint32{
	rgb(0x4e, 0x79, 0xa7), // blue
	rgb(0xf2, 0x8e, 0x2b), // orange
	rgb(0xe1, 0x57, 0x59), // red
	rgb(0x76, 0xb7, 0xb2), // teal
	rgb(0x59, 0xa1, 0x4f), // green
	rgb(0xed, 0xc9, 0x48), // yellow
	rgb(0xb0, 0x7a, 0xa1), // purple
	rgb(0xff, 0x9d, 0xa7), // pink
	rgb(0x9c, 0x75, 0x5f), // brown
	rgb(0x8c, 0xd1, 0x7d), // light green
	rgb(0xa0, 0xcb, 0xe8), // light blue
	rgb(0xd3, 0x72, 0x95), // magenta
}

// PaletteSize is the number of distinct node colours.
const PaletteSize = len(palette)

// noHue marks a node without category (or without the chosen component).
const noHue = 0xff

// grey is the colour of a node without category.
var grey = rgb(0xba, 0xb0, 0xac)

func rgb(r, g, b uint8) uint32 { return uint32(r) | uint32(g)<<8 | uint32(b)<<16 | 0xff<<24 }

// Color returns the opaque colour of palette entry hue, or grey for a hue
// outside the palette.
func Color(hue uint8) uint32 {
	if int(hue) < len(palette) {
		return palette[hue]
	}
	return grey
}

// Hue returns the palette entry that s (a category or a component value)
// hashes to: FNV-1a, so the same name has the same colour everywhere.
func Hue(s []byte) uint8 {
	h := fnv.New32a()
	_, _ = h.Write(s)
	return uint8(h.Sum32() % uint32(len(palette)))
}

// withAlpha replaces c's alpha.
func withAlpha(c uint32, a uint8) uint32 { return c&0x00ffffff | uint32(a)<<24 }

// sizeFor is a node's diameter at degree deg: 4 + 2·log2(1+deg), capped.
func sizeFor(deg uint32, maxSize float32) float32 {
	return min(4+2*float32(math.Log2(1+float64(deg))), maxSize)
}
