package actors

import (
	"strconv"
	"unicode"
	"unicode/utf8"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// Limits enforced on every command.
const (
	MaxGraphIDLen        = 64
	MaxIDLen             = 256 // node ids, edge ids, component types, categories
	MaxCommandIDLen      = 128
	MaxComponentValueLen = 64 << 10
	MaxCommands          = 1000
	MaxMetaLen           = 256 // envelope metadata strings, graph type, edge type
	MaxComponentsPerItem = 1000
)

// ValidateGraphID checks that id is 1-64 letters, digits, '-' or '_', so that
// it is a safe NATS subject token.
func ValidateGraphID(field, id string) error {
	if id == "" {
		return invalid(field, "graph id is empty")
	}
	if len(id) > MaxGraphIDLen {
		return invalid(field, "graph id is %d characters long; the limit is %d", len(id), MaxGraphIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return invalid(field, "graph id %q has %q at byte %d; only letters, digits, '-' and '_' are allowed", id, rune(c), i)
		}
	}
	return nil
}

// ValidateID checks a node id, edge id, component type or category: 1-256
// bytes of printable UTF-8 (spaces and any printable Unicode are fine, control
// characters are not).
func ValidateID(field, what, id string) error {
	return validatePrintable(field, what, id, 1, MaxIDLen)
}

func validatePrintable(field, what, s string, min, max int) error {
	if len(s) < min {
		return invalid(field, "%s is empty", what)
	}
	if len(s) > max {
		return invalid(field, "%s is %d bytes long; the limit is %d", what, len(s), max)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return invalid(field, "%s is not valid UTF-8 (byte %d)", what, i)
			}
		}
		if !unicode.IsPrint(r) && r != ' ' {
			return invalid(field, "%s %q has the unprintable character %U at byte %d", what, s, r, i)
		}
	}
	return nil
}

// ValidateEnvelope checks everything about an envelope that does not depend
// on the graph's state: ids, sizes, counts and every command's arguments.
func ValidateEnvelope(env *cairnv1.CommandEnvelope) error {
	if env == nil {
		return invalid("", "envelope is missing")
	}
	if err := ValidateGraphID("graph_id", env.GetGraphId()); err != nil {
		return err
	}
	if err := validatePrintable("command_id", "command id", env.GetCommandId(), 1, MaxCommandIDLen); err != nil {
		return err
	}
	for _, f := range [...]struct{ name, v string }{
		{"correlation_id", env.GetCorrelationId()}, {"causation_id", env.GetCausationId()}, {"issuer", env.GetIssuer()},
	} {
		if err := validatePrintable(f.name, f.name, f.v, 0, MaxMetaLen); err != nil {
			return err
		}
	}
	n := len(env.GetCommands())
	if n == 0 {
		return invalid("commands", "envelope holds no commands")
	}
	if n > MaxCommands {
		return invalid("commands", "envelope holds %d commands; the limit is %d", n, MaxCommands)
	}
	for i, c := range env.GetCommands() {
		if err := validateCommand(cmdField(i), env.GetGraphId(), c); err != nil {
			return err
		}
	}
	return nil
}

func cmdField(i int) string { return "commands[" + strconv.Itoa(i) + "]" }

func validateCommand(f, graph string, c *cairnv1.Command) error {
	switch k := c.GetKind().(type) {
	case *cairnv1.Command_CreateGraph:
		f += ".create_graph"
		if id := k.CreateGraph.GetGraphId(); id != "" && id != graph {
			return invalid(f+".graph_id", "graph id %q differs from the envelope's %q", id, graph)
		}
		if err := validatePrintable(f+".graph_type", "graph type", k.CreateGraph.GetGraphType(), 0, MaxMetaLen); err != nil {
			return err
		}
		if len(k.CreateGraph.GetMetadata()) > MaxComponentsPerItem {
			return invalid(f+".metadata", "%d metadata entries; the limit is %d", len(k.CreateGraph.GetMetadata()), MaxComponentsPerItem)
		}
		for key, v := range k.CreateGraph.GetMetadata() {
			if err := ValidateID(f+".metadata", "metadata key", key); err != nil {
				return err
			}
			if len(v) > MaxComponentValueLen {
				return invalid(f+".metadata["+key+"]", "metadata value is %d bytes; the limit is %d", len(v), MaxComponentValueLen)
			}
		}
	case *cairnv1.Command_AddNode:
		f += ".add_node"
		if err := ValidateID(f+".node_id", "node id", k.AddNode.GetNodeId()); err != nil {
			return err
		}
		if err := validateComponents(f+".components", k.AddNode.GetComponents(), false); err != nil {
			return err
		}
		return validateCategories(f+".categories", k.AddNode.GetCategories())
	case *cairnv1.Command_SetNodeComponents:
		f += ".set_node_components"
		if err := ValidateID(f+".node_id", "node id", k.SetNodeComponents.GetNodeId()); err != nil {
			return err
		}
		return validateComponents(f+".components", k.SetNodeComponents.GetComponents(), true)
	case *cairnv1.Command_RemoveNodeComponents:
		f += ".remove_node_components"
		if err := ValidateID(f+".node_id", "node id", k.RemoveNodeComponents.GetNodeId()); err != nil {
			return err
		}
		types := k.RemoveNodeComponents.GetTypes()
		if len(types) == 0 {
			return invalid(f+".types", "no component types to remove")
		}
		return validateUnique(f+".types", "component type", types)
	case *cairnv1.Command_RemoveNode:
		return ValidateID(f+".remove_node.node_id", "node id", k.RemoveNode.GetNodeId())
	case *cairnv1.Command_ConnectNodes:
		f += ".connect_nodes"
		cn := k.ConnectNodes
		if err := ValidateID(f+".edge_id", "edge id", cn.GetEdgeId()); err != nil {
			return err
		}
		if err := ValidateID(f+".source", "source node id", cn.GetSource()); err != nil {
			return err
		}
		if err := ValidateID(f+".target", "target node id", cn.GetTarget()); err != nil {
			return err
		}
		if err := validatePrintable(f+".edge_type", "edge type", cn.GetEdgeType(), 0, MaxMetaLen); err != nil {
			return err
		}
		return validateComponents(f+".components", cn.GetComponents(), false)
	case *cairnv1.Command_DisconnectNodes:
		return ValidateID(f+".disconnect_nodes.edge_id", "edge id", k.DisconnectNodes.GetEdgeId())
	case *cairnv1.Command_DeleteGraph:
	default:
		return invalid(f, "command has no kind")
	}
	return nil
}

func validateComponents(f string, cs []*cairnv1.Component, needOne bool) error {
	if needOne && len(cs) == 0 {
		return invalid(f, "no components given")
	}
	if len(cs) > MaxComponentsPerItem {
		return invalid(f, "%d components; the limit is %d", len(cs), MaxComponentsPerItem)
	}
	seen := make(map[string]struct{}, len(cs))
	for i, c := range cs {
		cf := f + "[" + strconv.Itoa(i) + "]"
		if c == nil {
			return invalid(cf, "component is missing")
		}
		if err := ValidateID(cf+".type", "component type", c.GetType()); err != nil {
			return err
		}
		if len(c.GetValue()) > MaxComponentValueLen {
			return invalid(cf+".value", "component value is %d bytes; the limit is %d", len(c.GetValue()), MaxComponentValueLen)
		}
		if _, dup := seen[c.GetType()]; dup {
			return invalid(cf+".type", "component type %q appears twice", c.GetType())
		}
		seen[c.GetType()] = struct{}{}
	}
	return nil
}

func validateCategories(f string, cats []string) error {
	if len(cats) > MaxComponentsPerItem {
		return invalid(f, "%d categories; the limit is %d", len(cats), MaxComponentsPerItem)
	}
	return validateUnique(f, "category", cats)
}

func validateUnique(f, what string, ss []string) error {
	seen := make(map[string]struct{}, len(ss))
	for i, s := range ss {
		sf := f + "[" + strconv.Itoa(i) + "]"
		if err := ValidateID(sf, what, s); err != nil {
			return err
		}
		if _, dup := seen[s]; dup {
			return invalid(sf, "%s %q appears twice", what, s)
		}
		seen[s] = struct{}{}
	}
	return nil
}
