package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/cairn-graph/cairn/api"
)

const repairUsage = `Usage: cairn repair <graph> --seq N [--json]

Mends a quarantined graph (one whose queries and commands answer DATA_LOSS,
as cairn health lists) when the message that stopped it, at stream sequence
N, was never part of the graph's chain: bytes that are no transaction, a
transaction that does not link to the head before it, or one whose events
do not apply, and that no later transaction builds on. The engine checks
that, erases the message from the stream, folds what the graph's projection
skipped since, and serves the graph again; its next command reloads it.

Anything else is refused and nothing changes: a graph that is not
quarantined, or at another seq (NOT_FOUND); history that was removed (a
purge, a deleted message or stream: restore it from a copy), a message that
is part of the chain, or a chain still broken without it
(FAILED_PRECONDITION). An admin's command: it asks the engine on
` + api.RepairSubject + `.

--json prints {"graph":..,"seq":..,"reason":..,"dropped":..,"resumed":..,
"applied_seq":..}.
`

func runRepair(ctx context.Context, args []string, stdout, _ io.Writer) error {
	fs := newFlagSet("repair")
	var c clientFlags
	c.register(fs, "repair", time.Minute)
	seq := fs.Uint64("seq", 0, "stream `sequence` of the message that quarantined the graph")
	pos, err := parseArgs(fs, "repair", args, "graph")
	if err != nil {
		return err
	}
	if *seq == 0 {
		return &usageError{topic: "repair", err: errors.New("repair: --seq is required (the seq that cairn health names)")}
	}
	data, err := json.Marshal(api.RepairRequest{Graph: pos[0], Seq: *seq})
	if err != nil {
		return err
	}
	msg, err := c.requestRaw(ctx, api.RepairSubject, "a repair request", data, "; the repair may still have run: see cairn health")
	if err != nil {
		return err
	}
	var rep api.RepairReply
	if err := json.Unmarshal(msg.Data, &rep); err != nil {
		return fmt.Errorf("the engine's repair answer is not JSON: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("%s: %s", rep.Code, rep.Error)
	}
	if c.json {
		return writeJSON(stdout, rep.RepairResult)
	}
	fmt.Fprintf(stdout, "repaired %s: dropped seq %s (%s); the graph serves again, applied up to seq %d\n",
		rep.Graph, strconv.FormatUint(rep.Seq, 10), rep.Reason, rep.AppliedSeq)
	return nil
}
