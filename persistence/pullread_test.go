package persistence

import "testing"

// TestParseAckReply: both spellings of a JetStream message's reply subject
// give its sequences, time and pending count; anything else is refused.
func TestParseAckReply(t *testing.T) {
	for _, c := range []struct {
		reply            string
		sseq, dseq, pend uint64
		ts               int64
		ok               bool
	}{
		{"$JS.ACK.EVENTS.c_1.1.42.7.1700000000000000000.3", 42, 7, 3, 1700000000000000000, true},
		{"$JS.ACK.hub.ACCHASH.EVENTS.c_1.2.43.8.1700000000000000001.0.tok", 43, 8, 0, 1700000000000000001, true},
		{"$JS.ACK._.ACCHASH.EVENTS.c_1.2.43.8.1700000000000000001.0", 43, 8, 0, 1700000000000000001, true},
		{"$JS.ACK.EVENTS.c_1.1.42.7.1700000000000000000", 0, 0, 0, 0, false},
		{"$JS.ACK.EVENTS.c_1.1.x.7.1700000000000000000.3", 0, 0, 0, 0, false},
		{"_INBOX.abc", 0, 0, 0, 0, false},
		{"", 0, 0, 0, 0, false},
		{"$JS.ACK.a.b.c.d.e.f.g.h.i.j.k.l.m", 0, 0, 0, 0, false},
	} {
		sseq, dseq, ts, pend, ok := parseAckReply(c.reply)
		if ok != c.ok || ok && (sseq != c.sseq || dseq != c.dseq || ts != c.ts || pend != c.pend) {
			t.Errorf("%q: %d %d %d %d %v, want %d %d %d %d %v", c.reply, sseq, dseq, ts, pend, ok, c.sseq, c.dseq, c.ts, c.pend, c.ok)
		}
	}
}
