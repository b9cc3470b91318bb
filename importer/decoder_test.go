package importer

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/prototext"
)

// samples are one file per format, with every kind of line.
var samples = map[Format]string{
	FormatEdgeList: "# c\n\na b\r\nlibstdc++6\tpython3.11 t\n  # c2\nonly\nx y z w\n" + strings.Repeat("q", MaxLineBytes+10) + " r\n\xff y\nü a:b/c@d+e",
	FormatCSV: "source,target,type,w\nA,B,,1\n\"multi\nline\",b,t,\nbad,row\n\"unterminated,x\n" +
		"c,d,,\n",
	FormatJSONL: `{"node":"n","components":{"v":1}}` + "\n\nnot json\n" + `{"source":"a","target":"b"}` + "\n" +
		`{"node":"x","source":"y"}` + "\n" + `{"edge":"e","source":"a","target":"c","type":"t"}`,
}

// open opens a decoder for format over text at off, line.
func openSample(t testing.TB, format Format, text string, off, line int64) decoder {
	check := newChecker("g")
	r := strings.NewReader(text)
	switch format {
	case FormatCSV:
		cols, hdrEnd, hdrLines, err := readCSVHeader(strings.NewReader(text), false)
		if err != nil {
			t.Fatal(err)
		}
		if off < hdrEnd {
			off, line = hdrEnd, hdrLines
		}
		return newCSVFile(io.NewSectionReader(r, off, int64(len(text))-off), off, line, cols, false, check)
	case FormatJSONL:
		return newLineDecoder(io.NewSectionReader(r, off, int64(len(text))-off), off, line, check, parseJSONLine)
	}
	return newLineDecoder(io.NewSectionReader(r, off, int64(len(text))-off), off, line, check, parseEdgeLine)
}

type decoded struct {
	rec       string
	off, line int64
}

func decodeAll(t testing.TB, d decoder) []decoded {
	var out []decoded
	for {
		rec, err := d.next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		off, line := d.pos()
		s := fmt.Sprintf("%d %q", rec.line, rec.bad)
		if rec.cmd != nil {
			// prototext varies its spaces on purpose: fold them.
			s += " " + strings.Join(strings.Fields(prototext.MarshalOptions{}.Format(rec.cmd)), " ")
		}
		out = append(out, decoded{s, off, line})
	}
}

// TestDecoderResume: a decoder opened at the position after any record
// reads the same records, with the same line numbers, as one that read on.
func TestDecoderResume(t *testing.T) {
	for format, text := range samples {
		t.Run(string(format), func(t *testing.T) {
			all := decodeAll(t, openSample(t, format, text, 0, 0))
			last := all[len(all)-1]
			if last.off != int64(len(text)) {
				t.Errorf("last offset %d, want %d", last.off, len(text))
			}
			for k, d := range all {
				rest := decodeAll(t, openSample(t, format, text, d.off, d.line))
				if fmt.Sprint(rest) != fmt.Sprint(all[k+1:]) {
					t.Fatalf("resumed after record %d (%s):\n got %v\nwant %v", k, d.rec, rest, all[k+1:])
				}
			}
		})
	}
}

func TestDecoderLines(t *testing.T) {
	for format, want := range map[Format][]string{
		FormatEdgeList: {`1 ""`, `2 ""`, `3 "" connect_nodes:{edge_id:"a->b" source:"a" target:"b" create_missing:true}`,
			`4 "" connect_nodes:{edge_id:"libstdc++6-[t]->python3.11" source:"libstdc++6" target:"python3.11" edge_type:"t" create_missing:true}`,
			`5 ""`, `6 "one field \"only\"; want 'source target [type]'"`, `7 "more than 3 fields; want 'source target [type]'"`,
			`8 "line longer than 1 MiB"`, `9 "source node id is not valid UTF-8 (byte 0)"`,
			`10 "" connect_nodes:{edge_id:"ü->a:b/c@d+e" source:"ü" target:"a:b/c@d+e" create_missing:true}`},
		FormatCSV: {`2 "" connect_nodes:{edge_id:"A->B" source:"A" target:"B" components:{type:"w" value:"1"} create_missing:true}`,
			`3 "source node id \"multi\\nline\" has the unprintable character U+000A at byte 5"`,
			`5 "2 fields; the header has 4"`, `6 "extraneous or missing \" in quoted-field"`},
	} {
		var got []string
		for _, d := range decodeAll(t, openSample(t, format, samples[format], 0, 0)) {
			got = append(got, d.rec)
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", format, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// FuzzDecoders: no input makes a decoder fail, loop or go backwards, and a
// resumed decoder agrees with one that read on.
func FuzzDecoders(f *testing.F) {
	for format, text := range samples {
		if len(text) < 4096 {
			f.Add(string(format), text)
		}
	}
	f.Fuzz(func(t *testing.T, format, text string) {
		switch Format(format) {
		case FormatEdgeList, FormatJSONL:
		case FormatCSV:
			if _, _, _, err := readCSVHeader(strings.NewReader(text), false); err != nil {
				return
			}
		default:
			return
		}
		all := decodeAll(t, openSample(t, Format(format), text, 0, 0))
		var prev decoded
		for _, d := range all {
			if d.off < prev.off || d.line < prev.line || d.off > int64(len(text)) {
				t.Fatalf("position went from %d/%d to %d/%d", prev.off, prev.line, d.off, d.line)
			}
			prev = d
		}
		if len(all) > 1 {
			mid := all[len(all)/2]
			rest := decodeAll(t, openSample(t, Format(format), text, mid.off, mid.line))
			if fmt.Sprint(rest) != fmt.Sprint(all[len(all)/2+1:]) {
				t.Fatalf("resume differs")
			}
		}
	})
}
