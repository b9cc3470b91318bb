package persistence

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestParsePubAck: the hand-read PubAck gives what encoding/json gives,
// for nats-server's spellings and for the forms it leaves to
// encoding/json.
func TestParsePubAck(t *testing.T) {
	for _, c := range []struct {
		in      string
		seq     uint64
		dup     bool
		scanned bool // read without encoding/json
		code    jetstream.ErrorCode
		invalid bool
	}{
		{in: `{"stream":"cairn","seq":42}`, seq: 42, scanned: true},
		{in: `{"stream":"cairn","domain":"hub","seq":7}`, seq: 7, scanned: true},
		{in: `{"stream":"cairn","seq":9,"duplicate": true}`, seq: 9, dup: true, scanned: true},
		{in: `{"stream":"cairn","seq":9,"duplicate":true}`, seq: 9, dup: true, scanned: true},
		{in: `{"stream":"cairn","seq":18446744073709551615}`, seq: 18446744073709551615, scanned: true},
		{in: `{"stream":"cairn","seq":5,"val":"3"}`, seq: 5},
		{in: `{"seq":5,"stream":"cairn"}`, seq: 5},
		{in: `{"stream":"cairn", "seq":5}`, seq: 5},
		{in: `{"stream":"ca\"irn","seq":5}`, seq: 5},
		{in: `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"},"stream":"cairn","seq":0}`, code: jetstream.JSErrCodeStreamWrongLastSequence},
		{in: `{"error":{"code":503,"err_code":10077,"description":"x"}}`, code: 10077},
		{in: `{"stream":"cairn","seq":18446744073709551616}`, invalid: true},
		{in: `{"seq":5}`, invalid: true},
		{in: `not json`, invalid: true},
		{in: ``, invalid: true},
	} {
		seq, dup, err := parsePubAck([]byte(c.in))
		var apiErr *jetstream.APIError
		switch {
		case c.code != 0:
			if !errors.As(err, &apiErr) || apiErr.ErrorCode != c.code {
				t.Errorf("%s: error %v, want API error %d", c.in, err, c.code)
			}
		case c.invalid:
			if !errors.Is(err, errInvalidAck) {
				t.Errorf("%s: error %v, want errInvalidAck", c.in, err)
			}
		case err != nil || seq != c.seq || dup != c.dup:
			t.Errorf("%s: got %d %v %v, want %d %v", c.in, seq, dup, err, c.seq, c.dup)
		}
		if _, _, ok := scanPubAck([]byte(c.in)); ok != c.scanned {
			t.Errorf("%s: scanned %v, want %v", c.in, ok, c.scanned)
		}
	}
}

// FuzzScanPubAck: whatever the scan accepts, encoding/json reads the same.
func FuzzScanPubAck(f *testing.F) {
	for _, s := range []string{`{"stream":"cairn","seq":42}`, `{"stream":"c","domain":"d","seq":1,"duplicate": true}`, `{"stream":"c","seq":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		seq, dup, ok := scanPubAck(data)
		if !ok {
			return
		}
		var pa struct {
			Stream    string `json:"stream"`
			Seq       uint64 `json:"seq"`
			Duplicate bool   `json:"duplicate"`
		}
		if err := json.Unmarshal(data, &pa); err != nil {
			t.Fatalf("scanned %q, encoding/json refuses it: %v", data, err)
		}
		if pa.Stream == "" || pa.Seq != seq || pa.Duplicate != dup {
			t.Fatalf("scanned %q as %d %v, encoding/json reads %+v", data, seq, dup, pa)
		}
	})
}
