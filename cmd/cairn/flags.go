package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// newFlagSet returns a flag set for "cairn <name>" that prints nothing
// itself: parseArgs turns its errors into usage errors.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("cairn "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseArgs parses args with fs and returns exactly len(names) positional
// arguments. Flags may come before, between and after the positional
// arguments (users type "cairn node add g n --component a=b"); "--" ends the
// flags, so that an id starting with '-' can be given after it. topic is the
// help page that a usage error points to.
func parseArgs(fs *flag.FlagSet, topic string, args []string, names ...string) ([]string, error) {
	var flags, pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimLeft(a, "-")
		if strings.Contains(name, "=") {
			continue
		}
		if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, &helpRequest{topic: topic}
		}
		return nil, &usageError{topic: topic, err: fmt.Errorf("%s: %w", strings.TrimPrefix(fs.Name(), "cairn "), err)}
	}
	required := 0 // names in brackets ("[node]") are optional and trail
	for _, n := range names {
		if !strings.HasPrefix(n, "[") {
			required++
		}
	}
	if len(pos) < required || len(pos) > len(names) {
		want := make([]string, len(names))
		for i, n := range names {
			want[i] = n
			if !strings.HasPrefix(n, "[") {
				want[i] = "<" + n + ">"
			}
		}
		got := fmt.Sprintf("got %d", len(pos))
		if len(pos) > 0 {
			got += ": " + strings.Join(pos, " ")
		}
		if len(names) == 0 {
			return nil, &usageError{topic: topic, err: fmt.Errorf("%s: takes no arguments, %s",
				strings.TrimPrefix(fs.Name(), "cairn "), got)}
		}
		noun := "arguments"
		if len(names) == 1 {
			noun = "argument"
		}
		count := strconv.Itoa(len(names))
		if required < len(names) {
			count = fmt.Sprintf("%d to %d", required, len(names))
		}
		return nil, &usageError{topic: topic, err: fmt.Errorf("%s: want %s %s %s, %s",
			strings.TrimPrefix(fs.Name(), "cairn "), count, noun, strings.Join(want, " "), got)}
	}
	for len(pos) < len(names) {
		pos = append(pos, "") // an optional argument not given
	}
	return pos, nil
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// helpRequest is -h or --help on a command: run prints the topic's help to
// stdout and succeeds.
type helpRequest struct{ topic string }

func (h *helpRequest) Error() string { return "help requested" }

// stringsFlag collects a repeated flag's values in order.
type stringsFlag []string

func (s *stringsFlag) String() string { return strings.Join(*s, ",") }

func (s *stringsFlag) Set(v string) error {
	*s = append(*s, v)
	return nil
}

// splitPair splits "key=value" on the first '='; the value may contain more.
func splitPair(v, what string) (string, string, error) {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return "", "", fmt.Errorf("want %s=value", what)
	}
	return k, val, nil
}

// componentsFlag collects repeated "--component type=value" flags. Values
// are taken as the string's bytes.
type componentsFlag []*cairnv1.Component

func (c *componentsFlag) String() string {
	parts := make([]string, len(*c))
	for i, comp := range *c {
		parts[i] = comp.GetType() + "=" + string(comp.GetValue())
	}
	return strings.Join(parts, ",")
}

func (c *componentsFlag) Set(v string) error {
	typ, val, err := splitPair(v, "type")
	if err != nil {
		return err
	}
	*c = append(*c, &cairnv1.Component{Type: typ, Value: []byte(val)})
	return nil
}

// metaFlag collects repeated "--meta key=value" flags.
type metaFlag map[string]string

func (m metaFlag) String() string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

func (m metaFlag) Set(v string) error {
	k, val, err := splitPair(v, "key")
	if err != nil {
		return err
	}
	if _, dup := m[k]; dup {
		return fmt.Errorf("key %q given twice", k)
	}
	m[k] = val
	return nil
}
