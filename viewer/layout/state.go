package layout

import (
	"fmt"

	"github.com/cairn-graph/cairn/viewer/scene"
)

var _ scene.StatefulPlacer = (*Layout)(nil)

// AppendState appends l's whole state (AppendBinary's bytes) to dst, for a
// scene keyframe. It never fails.
func (l *Layout) AppendState(dst []byte) ([]byte, error) { return l.AppendBinary(dst) }

// RestoreState replaces l's state with the one AppendState wrote, so that
// l goes on exactly as the Layout that wrote it: the same positions after
// the same later calls. Unlike UnmarshalBinary it keeps l's Params and
// seed: a state made with others is refused, since positions are a
// function of them. On error l is unchanged.
//
// Errors: a *DecodeError wrapping ErrCorrupt for bytes that are not a
// layout state; an error wrapping ErrMismatch for a state of other Params
// or another seed.
func (l *Layout) RestoreState(data []byte) error {
	d := decoder{b: data}
	n, err := d.decode()
	if err != nil {
		return err
	}
	if n.p != l.p {
		return fmt.Errorf("%w: state params %+v, layout params %+v", ErrMismatch, n.p, l.p)
	}
	if n.seed != l.seed {
		return fmt.Errorf("%w: state seed %#x, layout seed %#x", ErrMismatch, n.seed, l.seed)
	}
	n.workers = l.workers
	*l = *n
	return nil
}
