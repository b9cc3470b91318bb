package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"

	"github.com/cairn-graph/cairn/aggregate"
	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// record is one line (or CSV record) of the input: a command, nothing (a
// comment or blank line) or a bad line.
type record struct {
	line int64
	cmd  *cairnv1.Command
	bad  string
}

// decoder reads records from one file, from a byte offset on.
type decoder interface {
	// next returns the next record; io.EOF after the last.
	next() (record, error)
	// pos is the byte offset and the number of lines after the last record.
	pos() (offset, line int64)
}

// EdgeID is the id an edge gets when its line names none: "source->target",
// or "source-[type]->target" with a type; when that is longer than
// aggregate.MaxIDLen bytes, "sha256:" and the first 32 hex digits of its
// SHA-256. A line importing the same edge again is then reported as
// existing, not added twice.
func EdgeID(source, target, typ string) string {
	var id string
	if typ == "" {
		id = source + "->" + target
	} else {
		id = source + "-[" + typ + "]->" + target
	}
	if len(id) <= aggregate.MaxIDLen {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "sha256:" + hex.EncodeToString(sum[:16])
}

func edgeCommand(id, source, target, typ string, comps []*cairnv1.Component) *cairnv1.Command {
	if id == "" {
		id = EdgeID(source, target, typ)
	}
	return &cairnv1.Command{Kind: &cairnv1.Command_ConnectNodes{ConnectNodes: &cairnv1.ConnectNodes{
		EdgeId: id, Source: source, Target: target, EdgeType: typ, Components: comps, CreateMissing: true}}}
}

func nodeCommand(id string, comps []*cairnv1.Component, cats []string) *cairnv1.Command {
	return &cairnv1.Command{Kind: &cairnv1.Command_AddNode{AddNode: &cairnv1.AddNode{NodeId: id, Components: comps, Categories: cats}}}
}

// sortComponents orders components by type, so that a line always makes
// the same command.
func sortComponents(cs []*cairnv1.Component) {
	slices.SortFunc(cs, func(a, b *cairnv1.Component) int { return strings.Compare(a.GetType(), b.GetType()) })
}

// edgeRecord returns the command for an edge line, or why it is bad. An
// edge named by EdgeID has its endpoints checked first, so that a bad
// source or target is reported as such.
func edgeRecord(check *checker, id, source, target, typ string, comps []*cairnv1.Component) (*cairnv1.Command, string) {
	if id == "" {
		for _, n := range [...]struct{ what, id string }{{"source node id", source}, {"target node id", target}} {
			if err := aggregate.ValidateID("", n.what, n.id); err != nil {
				return nil, errorMessage(err)
			}
		}
	}
	cmd := edgeCommand(id, source, target, typ, comps)
	if bad := check.check(cmd); bad != "" {
		return nil, bad
	}
	return cmd, ""
}

// checker validates one command as the engine would (ids, sizes), so that
// a malformed line is reported without a round trip.
type checker struct {
	env *cairnv1.CommandEnvelope
	one [1]*cairnv1.Command
}

func newChecker(graph string) *checker {
	return &checker{env: &cairnv1.CommandEnvelope{GraphId: graph, CommandId: "check"}}
}

// check returns why the engine would refuse cmd, or "".
func (c *checker) check(cmd *cairnv1.Command) string {
	c.one[0] = cmd
	c.env.Commands = c.one[:]
	err := aggregate.ValidateEnvelope(c.env)
	c.one[0] = nil
	if err == nil {
		return ""
	}
	return errorMessage(err)
}

// errorMessage is a command error's message without its code and field.
func errorMessage(err error) string {
	var ce *aggregate.CommandError
	if errors.As(err, &ce) {
		return ce.Message
	}
	return err.Error()
}
