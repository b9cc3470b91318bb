package actors

import "testing"

// FuzzAcrossCursors: the cursors of the requests across graphs come from
// clients. Decoding one never panics, a cursor it accepts names a valid
// graph id, and what the engine encodes decodes back to what it encoded.
func FuzzAcrossCursors(f *testing.F) {
	f.Add(encodeListCursor("g1"), "g1", "")
	f.Add(encodeFindCursor("g-2", "inner"), "g-2", "inner")
	f.Add(encodeFindCursor("g_3", ""), "g_3", "x\x00y")
	f.Add("nope", "", "")
	f.Add("ZmcAYmFk", "a.b", "")
	f.Fuzz(func(t *testing.T, cursor, graph, inner string) {
		if g, err := decodeListCursor("c", cursor); err == nil && g == "" {
			t.Fatalf("list cursor %q accepted without a graph", cursor)
		}
		if g, _, err := decodeFindCursor("c", cursor); err == nil && g == "" {
			t.Fatalf("find cursor %q accepted without a graph", cursor)
		}
		if _, err := decodeListCursor("c", encodeListCursor(graph)); err != nil {
			return // not a valid graph id: refused, as it must be
		}
		if g, err := decodeListCursor("c", encodeListCursor(graph)); err != nil || g != graph {
			t.Fatalf("list cursor of %q decodes to %q, %v", graph, g, err)
		}
		g, in, err := decodeFindCursor("c", encodeFindCursor(graph, inner))
		if err != nil || g != graph || in != inner {
			t.Fatalf("find cursor of %q, %q decodes to %q, %q, %v", graph, inner, g, in, err)
		}
	})
}
