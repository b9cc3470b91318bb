package main

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/internal/testbin"
)

// health runs "cairn health --json" against url.
func health(t testing.TB, url string) api.ProjectionHealth {
	t.Helper()
	var h api.ProjectionHealth
	out := mustRun(t, "health", "--json", "--server", url)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("health --json: %v: %q", err, out)
	}
	return h
}

// waitSnapshots waits until verify lists both kinds of snapshot of graph
// on url, every one good (one pruned while verify reads it shows as bad:
// verify again).
func waitSnapshots(t testing.TB, url, graph string) {
	t.Helper()
	pollUntil(t, "snapshots of graph "+graph, func() string {
		var v verifyJSON
		r := runCLI(t, "verify", graph, "--json", "--server", url)
		if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
			return fmt.Sprintf("verify --json: %v: %q, stderr %q", err, r.stdout, r.stderr)
		}
		kinds := map[string]bool{}
		for _, s := range v.Snapshots {
			kinds[s.Kind] = s.OK
		}
		if r.err != nil || !v.OK || !kinds["aggregate"] || !kinds["readmodel"] {
			return fmt.Sprintf("verify: %v: %s", r.err, r.stdout)
		}
		return ""
	})
}

// pollUntil calls cond until it returns "" or 30 seconds pass; then it
// fails t with cond's last answer, what is still missing.
func pollUntil(t testing.TB, what string, cond func() string) {
	t.Helper()
	pollFor(t, what, 30*time.Second, cond)
}

// pollFor is pollUntil with another limit.
func pollFor(t testing.TB, what string, limit time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		missing := cond()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, limit, missing)
		}
		<-tick.C
	}
}

// answers runs the query command lines (without "query") with --json and
// --min-seq minSeq and returns their replies, less the cached flag, which
// depends on what was asked before.
func answers(t *testing.T, url string, minSeq uint64, queries [][]string) []map[string]any {
	t.Helper()
	out := make([]map[string]any, len(queries))
	for i, q := range queries {
		args := append(append([]string{"query"}, q...), "--json", "--min-seq", strconv.FormatUint(minSeq, 10), "--server", url)
		line := mustRun(t, args...)
		if err := json.Unmarshal([]byte(line), &out[i]); err != nil {
			t.Fatalf("cairn %s: %v: %q", strings.Join(args, " "), err, line)
		}
		delete(out[i], "cached")
	}
	return out
}

// TestServeKillResumesFromSnapshots runs the cairn binary with small
// snapshot intervals, writes two graphs until aggregate and read-model
// snapshots exist, kill -9s it and restarts it on the same data: the
// projections must resume from their newest manifest (no fallback) and
// answer as before, a command must activate its grain from an aggregate
// snapshot, and after more writes the answers must equal those of an
// engine that rebuilt everything from the stream (--no-snapshots).
func TestServeKillResumesFromSnapshots(t *testing.T) {
	start := time.Now()
	phase := func(name string) { t.Logf("%s: %s", name, time.Since(start).Round(time.Millisecond)) }
	bin := testbin.Cairn(t)
	phase("built")
	dir := t.TempDir()
	flags := []string{"--snapshot-every", "5", "--snapshot-keep", "2", "--readmodel-snapshot-every", "10", "--snapshot-spacing", "0",
		"--shards", "2", "--log-level", "debug"}
	srv := startServe(t, bin, dir, flags...)

	var last uint64
	write := func(url string, args ...string) {
		t.Helper()
		var rep replyJSON
		out := mustRun(t, append(args, "--json", "--server", url)...)
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("cairn %s: %v: %q", strings.Join(args, " "), err, out)
		}
		last = max(last, rep.Seq)
	}
	// Graph a: 12 nodes and a chain of 11 edges (24 events); graph b: 4
	// nodes (5 events).
	write(srv.url, "graph", "create", "a")
	write(srv.url, "graph", "create", "b")
	for i := range 12 {
		write(srv.url, "node", "add", "a", fmt.Sprintf("n%02d", i), "--component", fmt.Sprintf("rank=%d", i%3), "--category", "c"+strconv.Itoa(i%2))
		if i > 0 {
			write(srv.url, "edge", "add", "a", fmt.Sprintf("e%02d", i), fmt.Sprintf("n%02d", i-1), fmt.Sprintf("n%02d", i), "--type", "next")
		}
		if i < 4 {
			write(srv.url, "node", "add", "b", fmt.Sprintf("m%d", i))
		}
	}
	phase("written")
	// The snapshots are written aside: wait until verify lists both kinds
	// for both graphs, every one good (one pruned while verify reads it
	// shows as bad: verify again).
	for _, g := range []string{"a", "b"} {
		waitSnapshots(t, srv.url, g)
	}
	var before api.ProjectionHealth
	pollUntil(t, "projections applied and snapshotted", func() string {
		before = health(t, srv.url)
		if before.AppliedSeq < last || before.Snapshots.LastSeq == 0 {
			return fmt.Sprintf("health %+v, want applied seq %d and a manifest", before, last)
		}
		return ""
	})
	queries := [][]string{
		{"stats", "a"}, {"stats", "b"}, {"node", "a", "n05"}, {"node", "b", "m2"},
		{"neighbors", "a", "n05", "--direction", "both"}, {"khop", "a", "n00", "--depth", "3"},
		{"find", "a", "--category", "c1"}, {"top", "a", "--k", "3"},
	}
	want := answers(t, srv.url, last, queries)
	phase("snapshotted")

	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	srv.wait(t)
	srv = startServe(t, bin, dir, flags...)
	phase("restarted")
	// The projections restore their read models in the background, then
	// replay the tail.
	var h api.ProjectionHealth
	pollUntil(t, "projections caught up after the restart", func() string {
		if h = health(t, srv.url); h.AppliedSeq < last {
			return fmt.Sprintf("health %+v, want applied seq %d", h, last)
		}
		return ""
	})
	if s := h.Snapshots; s.RestoredSeq < before.Snapshots.LastSeq || s.RestoredGraphs != 2 || s.Fallbacks != 0 || h.Failures != 0 {
		t.Errorf("after kill -9: snapshot health %+v, want restored from seq %d or later, 2 graphs, no fallback", s, before.Snapshots.LastSeq)
	}
	if got := answers(t, srv.url, last, queries); !reflect.DeepEqual(got, want) {
		t.Errorf("after kill -9 the answers differ:\n got %v\nwant %v", got, want)
	}

	phase("compared")
	// A command activates graph a's grain: from an aggregate snapshot plus
	// the events after it (the debug log says so; the grain counters are
	// not in the engine's stats).
	write(srv.url, "node", "add", "a", "n12")
	write(srv.url, "edge", "add", "a", "e12", "n11", "n12", "--type", "next")
	write(srv.url, "node", "set", "a", "n00", "--component", "rank=9")
	write(srv.url, "edge", "remove", "a", "e03")
	write(srv.url, "node", "add", "b", "m4")
	logs, err := os.ReadFile(srv.stderr)
	if err != nil {
		t.Fatal(err)
	}
	activated := regexp.MustCompile(`msg="activated from snapshot" component=graph-grain graph=a snapshot=\S+ snapshot_seq=[1-9]`)
	if !activated.Match(logs) {
		t.Errorf("graph a's grain did not activate from a snapshot; serve's log:\n%s", logs)
	}
	// No fallback and no other trouble in the engine's own components.
	warned := regexp.MustCompile(`level=(WARN|ERROR) .*component=(graph-grain|projections)`)
	if l := warned.Find(logs); l != nil {
		t.Errorf("serve warned after the restart: %s", l)
	}
	got := answers(t, srv.url, last, queries)

	phase("written more")
	// The reference: an engine that loads no snapshot rebuilds everything
	// from the stream.
	if err := srv.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if code := srv.wait(t); code != 0 {
		t.Fatalf("after SIGINT: exit %d (%v)", code, srv.waitErr)
	}
	srv = startServe(t, bin, dir, "--no-snapshots", "--shards", "2")
	if h := health(t, srv.url); h.Snapshots.RestoredSeq != 0 {
		t.Errorf("with --no-snapshots: restored from seq %d", h.Snapshots.RestoredSeq)
	}
	phase("rebuilt")
	if ref := answers(t, srv.url, last, queries); !reflect.DeepEqual(got, ref) {
		t.Errorf("after more writes, the restored engine answers\n%v\nand one rebuilt from the stream\n%v", got, ref)
	}
}

// A negative --snapshot-spacing is a usage error (exit 2) naming the flag.
func TestServeSnapshotSpacingUsage(t *testing.T) {
	r := runCLI(t, "serve", "--data", t.TempDir(), "--nats-listen", "none", "--snapshot-spacing", "-1")
	if r.code() != exitUsage || !strings.Contains(r.stderr, "--snapshot-spacing must be 0 (off) or more, not -1") {
		t.Errorf("--snapshot-spacing -1: exit %d, stderr %q; want 2 and the flag named", r.code(), r.stderr)
	}
}
