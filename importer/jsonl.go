package importer

import (
	"bytes"
	"encoding/json"
	"fmt"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// parseJSONLine parses a JSON lines line, one object:
//
//	{"node":"id","components":{"type":"value"},"categories":["c"]}
//	{"edge":"id","source":"a","target":"b","type":"t","components":{...}}
//
// ("edge" is optional: EdgeID names the edge then). A component value that
// is a JSON string is taken as its text; any other JSON value as its JSON
// text. A blank line makes no command.
func parseJSONLine(check *checker, b []byte) (*cairnv1.Command, string) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, ""
	}
	var jr jsonRecord
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&jr); err != nil {
		return nil, "bad JSON: " + err.Error()
	}
	if dec.More() {
		return nil, "bad JSON: more than one value on the line"
	}
	comps, err := jsonComponents(jr.Components)
	if err != nil {
		return nil, err.Error()
	}
	switch {
	case jr.Node != nil && (jr.Edge != "" || jr.Source != "" || jr.Target != "" || jr.Type != ""):
		return nil, `a line is a node ("node") or an edge ("source", "target"), not both`
	case jr.Node != nil:
		cmd := nodeCommand(*jr.Node, comps, jr.Categories)
		if bad := check.check(cmd); bad != "" {
			return nil, bad
		}
		return cmd, ""
	case len(jr.Categories) > 0:
		return nil, "an edge has no categories"
	case jr.Source == "" || jr.Target == "":
		return nil, `want "node", or "source" and "target"`
	}
	return edgeRecord(check, jr.Edge, jr.Source, jr.Target, jr.Type, comps)
}

type jsonRecord struct {
	Node       *string                    `json:"node"`
	Edge       string                     `json:"edge"`
	Source     string                     `json:"source"`
	Target     string                     `json:"target"`
	Type       string                     `json:"type"`
	Components map[string]json.RawMessage `json:"components"`
	Categories []string                   `json:"categories"`
}

func jsonComponents(m map[string]json.RawMessage) ([]*cairnv1.Component, error) {
	if len(m) == 0 {
		return nil, nil
	}
	cs := make([]*cairnv1.Component, 0, len(m))
	for t, raw := range m {
		v := []byte(raw)
		if len(raw) > 0 && raw[0] == '"' {
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return nil, fmt.Errorf("component %q: %w", t, err)
			}
			v = []byte(s)
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, raw); err != nil {
				return nil, fmt.Errorf("component %q: %w", t, err)
			}
			v = buf.Bytes()
		}
		cs = append(cs, &cairnv1.Component{Type: t, Value: v})
	}
	sortComponents(cs)
	return cs, nil
}
