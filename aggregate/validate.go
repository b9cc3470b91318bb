package aggregate

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
		if err := validateCommand(env.GetGraphId(), c); err != nil {
			return within(cmdField(i), err)
		}
	}
	return validateLinks(env)
}

// cmdField is the field path of an envelope's command i, for errors.
func cmdField(i int) string {
	if i >= 0 && i < len(cmdFields) {
		return cmdFields[i] // most envelopes hold a few commands: no allocation
	}
	return "commands[" + strconv.Itoa(i) + "]"
}

// cmdFields holds the paths of the first commands; it is never written.
var cmdFields = [...]string{
	"commands[0]", "commands[1]", "commands[2]", "commands[3]", "commands[4]", "commands[5]", "commands[6]", "commands[7]",
	"commands[8]", "commands[9]", "commands[10]", "commands[11]", "commands[12]", "commands[13]", "commands[14]", "commands[15]",
}

func validateCommand(graph string, c *cairnv1.Command) error {
	switch k := c.GetKind().(type) {
	case *cairnv1.Command_CreateGraph:
		const f = "create_graph"
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
		const f = "add_node"
		if err := ValidateID(f+".node_id", "node id", k.AddNode.GetNodeId()); err != nil {
			return err
		}
		if err := validateComponents(f+".components", k.AddNode.GetComponents(), false); err != nil {
			return err
		}
		return validateCategories(f+".categories", k.AddNode.GetCategories())
	case *cairnv1.Command_SetNodeComponents:
		const f = "set_node_components"
		if err := ValidateID(f+".node_id", "node id", k.SetNodeComponents.GetNodeId()); err != nil {
			return err
		}
		return validateComponents(f+".components", k.SetNodeComponents.GetComponents(), true)
	case *cairnv1.Command_RemoveNodeComponents:
		const f = "remove_node_components"
		if err := ValidateID(f+".node_id", "node id", k.RemoveNodeComponents.GetNodeId()); err != nil {
			return err
		}
		types := k.RemoveNodeComponents.GetTypes()
		if len(types) == 0 {
			return invalid(f+".types", "no component types to remove")
		}
		return validateUnique(f+".types", "component type", types)
	case *cairnv1.Command_RemoveNode:
		return ValidateID("remove_node.node_id", "node id", k.RemoveNode.GetNodeId())
	case *cairnv1.Command_ConnectNodes:
		const f = "connect_nodes"
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
		return ValidateID("disconnect_nodes.edge_id", "edge id", k.DisconnectNodes.GetEdgeId())
	case *cairnv1.Command_DeleteGraph:
	case *cairnv1.Command_WriteTuple, *cairnv1.Command_DeleteTuple:
		return validateTupleCommand(c)
	default:
		return invalid("", "command has no kind")
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
	for i, c := range cs {
		if c == nil {
			return invalid(elem(f, i), "component is missing")
		}
		if err := ValidateID("type", "component type", c.GetType()); err != nil {
			return within(elem(f, i), err)
		}
		if len(c.GetValue()) > MaxComponentValueLen {
			return invalid(elem(f, i)+".value", "component value is %d bytes; the limit is %d", len(c.GetValue()), MaxComponentValueLen)
		}
	}
	if i := firstDup(len(cs), func(i int) string { return cs[i].GetType() }); i >= 0 {
		return invalid(elem(f, i)+".type", "component type %q appears twice", cs[i].GetType())
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
	for i, s := range ss {
		if err := ValidateID("", what, s); err != nil {
			return within(elem(f, i), err)
		}
	}
	if i := firstDup(len(ss), func(i int) string { return ss[i] }); i >= 0 {
		return invalid(elem(f, i), "%s %q appears twice", what, ss[i])
	}
	return nil
}

// firstDup returns the index of the first of n keys that repeats an earlier
// one, or -1. Short lists, the usual case, are compared pairwise without
// allocating.
func firstDup(n int, key func(int) string) int {
	if n <= 16 {
		for i := 1; i < n; i++ {
			for j := range i {
				if key(i) == key(j) {
					return i
				}
			}
		}
		return -1
	}
	seen := make(map[string]struct{}, n)
	for i := range n {
		if _, dup := seen[key(i)]; dup {
			return i
		}
		seen[key(i)] = struct{}{}
	}
	return -1
}

func elem(f string, i int) string { return f + "[" + strconv.Itoa(i) + "]" }

// within puts prefix in front of the field path of a *CommandError; field
// paths are built this way, on the way out, only when validation fails.
func within(prefix string, err error) error {
	ce, ok := err.(*CommandError)
	if !ok {
		return err
	}
	switch {
	case ce.Field == "":
		ce.Field = prefix
	case ce.Field[0] == '[':
		ce.Field = prefix + ce.Field
	default:
		ce.Field = prefix + "." + ce.Field
	}
	return ce
}
