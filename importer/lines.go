package importer

import (
	"bufio"
	"bytes"
	"errors"
	"io"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// MaxLineBytes is the longest line the edge list and JSON lines readers
// take; a longer one is a bad line, skipped.
const MaxLineBytes = 1 << 20

var errLineTooLong = errors.New("line longer than 1 MiB")

// lineReader reads lines and counts them and their bytes, keeping at most
// one line in memory.
type lineReader struct {
	r    *bufio.Reader
	off  int64 // byte offset after the last line read
	line int64 // number of the last line read
	long []byte
}

func newLineReader(r io.Reader, off, line int64) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 256<<10), off: off, line: line}
}

// next returns the next line without its "\n" or "\r\n", valid until the
// next call; io.EOF after the last. A line over MaxLineBytes is skipped
// and reported as errLineTooLong.
func (l *lineReader) next() ([]byte, error) {
	b, err := l.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		l.long = append(l.long[:0], b...)
		n, tooLong := int64(len(b)), false
		for errors.Is(err, bufio.ErrBufferFull) {
			b, err = l.r.ReadSlice('\n')
			n += int64(len(b))
			switch {
			case tooLong:
			case len(l.long)+len(b) > MaxLineBytes+2:
				tooLong, l.long = true, l.long[:0]
			default:
				l.long = append(l.long, b...)
			}
		}
		l.off += n
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		l.line++
		if tooLong {
			return nil, errLineTooLong
		}
		b = l.long
	} else {
		l.off += int64(len(b))
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		if len(b) == 0 {
			return nil, io.EOF
		}
		l.line++
	}
	b = bytes.TrimSuffix(b, []byte{'\n'})
	return bytes.TrimSuffix(b, []byte{'\r'}), nil
}

// lineDecoder is a decoder of a format with one record a line.
type lineDecoder struct {
	lr    *lineReader
	check *checker
	parse func(check *checker, line []byte) (*cairnv1.Command, string)
}

func newLineDecoder(r io.Reader, off, line int64, check *checker, parse func(*checker, []byte) (*cairnv1.Command, string)) *lineDecoder {
	return &lineDecoder{lr: newLineReader(r, off, line), check: check, parse: parse}
}

func (d *lineDecoder) pos() (int64, int64) { return d.lr.off, d.lr.line }

func (d *lineDecoder) next() (record, error) {
	b, err := d.lr.next()
	switch {
	case errors.Is(err, errLineTooLong):
		return record{line: d.lr.line, bad: err.Error()}, nil
	case err != nil:
		return record{}, err
	}
	rec := record{line: d.lr.line}
	rec.cmd, rec.bad = d.parse(d.check, b)
	return rec, nil
}
