package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// checkpointVersion changes when the checkpoint's meaning does; an older
// checkpoint is then ignored.
const checkpointVersion = 1

// checkpoint is what the checkpoint file holds: every envelope made from
// the lines before Offset (Line lines) of phase Phase, and of every phase
// before it, was acknowledged; Counts are their counts.
type checkpoint struct {
	Version  int    `json:"version"`
	Identity string `json:"identity"`
	Phase    string `json:"phase"`
	Offset   int64  `json:"offset"`
	Line     int64  `json:"line"`
	Counts   Counts `json:"counts"`
}

// identity names one import: the graph, the format, the batch size (an
// envelope's id must always name the same lines) and each file's size and
// first 64 KiB. A checkpoint is only used by the import it names, and
// command ids start with it.
func identity(graph string, format Format, batch int, files ...*os.File) (string, error) {
	h := sha256.New()
	fmt.Fprintf(h, "cairn-import v%d\x00%s\x00%s\x00%d\x00", checkpointVersion, graph, format, batch)
	buf := make([]byte, 64<<10)
	for _, f := range files {
		st, err := f.Stat()
		if err != nil {
			return "", err
		}
		n, err := f.ReadAt(buf, 0)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		h.Write([]byte(strconv.FormatInt(st.Size(), 10) + "\x00"))
		h.Write(buf[:n])
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// loadCheckpoint reads the checkpoint at path; it returns nil, nil when
// there is none or it belongs to another import.
func loadCheckpoint(path, id string) (*checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var c checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("checkpoint %s is damaged (%v): remove it or start over with no resume", path, err)
	}
	if c.Version != checkpointVersion || c.Identity != id {
		return nil, nil
	}
	return &c, nil
}

// save writes c to path atomically: a temporary file, synced, renamed.
func (c *checkpoint) save(path string) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
