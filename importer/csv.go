package importer

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// csvColumns is what a CSV header says. Reserved names: in a nodes file
// "id" (required) and "category" or "categories" (several separated by
// ';'); in an edges file "source" and "target" (required), "id" and
// "type". Every other column is a component type; an empty cell is no
// component.
type csvColumns struct {
	n                             int
	id, cats, source, target, typ int
	comps                         []csvComponent
}

type csvComponent struct {
	col int
	typ string
}

func parseHeader(h []string, nodes bool) (csvColumns, error) {
	c := csvColumns{n: len(h), id: -1, cats: -1, source: -1, target: -1, typ: -1}
	seen := make(map[string]bool, len(h))
	for i, name := range h {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte order mark
		}
		name = strings.TrimSpace(name)
		if seen[name] {
			return c, fmt.Errorf("column %q appears twice", name)
		}
		seen[name] = true
		var slot *int
		switch {
		case name == "id":
			slot = &c.id
		case nodes && (name == "category" || name == "categories"):
			slot = &c.cats
		case !nodes && name == "source":
			slot = &c.source
		case !nodes && name == "target":
			slot = &c.target
		case !nodes && name == "type":
			slot = &c.typ
		}
		if slot != nil {
			if *slot >= 0 {
				return c, fmt.Errorf("column %q: only one of category and categories", name)
			}
			*slot = i
			continue
		}
		if err := aggregate.ValidateID("", "column name (a component type)", name); err != nil {
			return c, errors.New(errorMessage(err))
		}
		c.comps = append(c.comps, csvComponent{col: i, typ: name})
	}
	switch {
	case nodes && c.id < 0:
		return c, errors.New(`a nodes file needs an "id" column`)
	case !nodes && (c.source < 0 || c.target < 0):
		return c, errors.New(`an edges file needs "source" and "target" columns`)
	}
	return c, nil
}

// csvFile reads the records of a nodes or an edges CSV file after its
// header.
type csvFile struct {
	cr       *csv.Reader
	base     int64 // byte offset where cr starts
	baseLine int64 // lines before base
	endLine  int64 // lines of cr's input consumed by the last record
	cols     csvColumns
	nodes    bool
	check    *checker
}

// readCSVHeader reads the header of the CSV file r and returns its columns,
// the byte offset after it and its number of lines.
func readCSVHeader(r io.Reader, nodes bool) (csvColumns, int64, int64, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 64<<10))
	h, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return csvColumns{}, 0, 0, errors.New("empty file: want a header line")
	}
	if err != nil {
		return csvColumns{}, 0, 0, fmt.Errorf("header: %w", err)
	}
	cols, err := parseHeader(h, nodes)
	if err != nil {
		return cols, 0, 0, fmt.Errorf("header: %w", err)
	}
	line, _ := cr.FieldPos(len(h) - 1)
	return cols, cr.InputOffset(), int64(line + strings.Count(h[len(h)-1], "\n")), nil
}

func newCSVFile(r io.Reader, off, line int64, cols csvColumns, nodes bool, check *checker) *csvFile {
	cr := csv.NewReader(bufio.NewReaderSize(r, 256<<10))
	cr.FieldsPerRecord = cols.n
	cr.ReuseRecord = true
	return &csvFile{cr: cr, base: off, baseLine: line, cols: cols, nodes: nodes, check: check}
}

func (d *csvFile) pos() (int64, int64) { return d.base + d.cr.InputOffset(), d.baseLine + d.endLine }

func (d *csvFile) next() (record, error) {
	row, err := d.cr.Read()
	var pe *csv.ParseError
	switch {
	case errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount):
		d.endLine = d.recordEnd(row)
		return record{line: d.baseLine + int64(pe.StartLine), bad: fmt.Sprintf("%d fields; the header has %d", len(row), d.cols.n)}, nil
	case errors.As(err, &pe):
		d.endLine = int64(pe.Line)
		return record{line: d.baseLine + int64(pe.StartLine), bad: pe.Err.Error()}, nil
	case err != nil:
		return record{}, err
	}
	first, _ := d.cr.FieldPos(0)
	d.endLine = d.recordEnd(row)
	rec := record{line: d.baseLine + int64(first)}
	var comps []*cairnv1.Component
	for _, c := range d.cols.comps {
		if v := row[c.col]; v != "" {
			comps = append(comps, &cairnv1.Component{Type: c.typ, Value: []byte(v)})
		}
	}
	if d.nodes {
		var cats []string
		if d.cols.cats >= 0 && row[d.cols.cats] != "" {
			cats = strings.Split(row[d.cols.cats], ";")
		}
		rec.cmd = nodeCommand(row[d.cols.id], comps, cats)
		if rec.bad = d.check.check(rec.cmd); rec.bad != "" {
			rec.cmd = nil
		}
		return rec, nil
	}
	id, typ := "", ""
	if d.cols.id >= 0 {
		id = row[d.cols.id]
	}
	if d.cols.typ >= 0 {
		typ = row[d.cols.typ]
	}
	rec.cmd, rec.bad = edgeRecord(d.check, id, row[d.cols.source], row[d.cols.target], typ, comps)
	return rec, nil
}

// recordEnd is the line (of cr's input) on which row, just read, ends.
func (d *csvFile) recordEnd(row []string) int64 {
	last, _ := d.cr.FieldPos(len(row) - 1)
	return int64(last + strings.Count(row[len(row)-1], "\n"))
}
