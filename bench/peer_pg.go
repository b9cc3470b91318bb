package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cairnv1 "github.com/cairn-graph/cairn/messages/cairn/v1"
)

// The PostgreSQL side of the peer scenario: the workload's graph in two
// tables, nodes and edges, with integer ids (node "n<i>" is i, edge "e<i>"
// is i, edge type "r<k>" is k, -1 for none), and the same questions asked
// in SQL over one connection (pgx over loopback TCP, statements prepared
// once and cached, as Cairn's remote driver reuses one NATS connection).

// pgSchema is created before the load; pgIndexes after it, as one loads a
// table in bulk.
const (
	pgSchema = `
CREATE TABLE nodes (id int NOT NULL, category text, components jsonb);
CREATE TABLE edges (id int NOT NULL, src int NOT NULL, dst int NOT NULL, type smallint NOT NULL);`
	pgIndexes = `
ALTER TABLE nodes ADD PRIMARY KEY (id);
ALTER TABLE edges ADD PRIMARY KEY (id);
CREATE INDEX edges_src ON edges (src, id);
CREATE INDEX edges_dst ON edges (dst, id);`
	// pgPathFunc is a bidirectional breadth-first search in PL/pgSQL over
	// the edges followed both ways: whole levels, each time on the side
	// whose frontier holds fewer nodes; with both sides complete to depths
	// a and b and no node seen by both, every path is longer than a+b, so
	// the first level that meets gives the length (the shortest of its
	// meetings). Visited nodes live in a per-session temporary table,
	// emptied at each commit. NULL: no path.
	pgPathFunc = `
CREATE FUNCTION shortest_path_len(s int, t int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
  lv int[] := ARRAY[0, 0];
  width bigint[] := ARRAY[1, 1];
  me int;
  other int;
  best int;
  added bigint;
BEGIN
  IF s = t THEN RETURN 0; END IF;
  INSERT INTO bfs_seen VALUES (s, 1, 0), (t, 2, 0);
  LOOP
    me := CASE WHEN width[1] <= width[2] THEN 1 ELSE 2 END;
    other := 3 - me;
    SELECT min(lv[me] + 1 + o.lvl) INTO best
      FROM bfs_seen f
      CROSS JOIN LATERAL (SELECT e.dst AS x FROM edges e WHERE e.src = f.node
                          UNION ALL SELECT e.src FROM edges e WHERE e.dst = f.node) nb
      JOIN bfs_seen o ON o.node = nb.x AND o.side = other
      WHERE f.side = me AND f.lvl = lv[me];
    IF best IS NOT NULL THEN RETURN best; END IF;
    INSERT INTO bfs_seen (node, side, lvl)
      SELECT DISTINCT nb.x, me, lv[me] + 1
      FROM bfs_seen f
      CROSS JOIN LATERAL (SELECT e.dst AS x FROM edges e WHERE e.src = f.node
                          UNION ALL SELECT e.src FROM edges e WHERE e.dst = f.node) nb
      WHERE f.side = me AND f.lvl = lv[me]
    ON CONFLICT (node) DO NOTHING;
    GET DIAGNOSTICS added = ROW_COUNT;
    IF added = 0 THEN RETURN NULL; END IF;
    width[me] := added;
    lv[me] := lv[me] + 1;
  END LOOP;
END $$;`
	pgSessionSetup = `CREATE TEMP TABLE bfs_seen (node int PRIMARY KEY, side smallint NOT NULL, lvl int NOT NULL) ON COMMIT DELETE ROWS`

	pgDegree    = `SELECT (SELECT count(*) FROM edges WHERE src = $1), (SELECT count(*) FROM edges WHERE dst = $1)`
	pgNeighbors = `SELECT id, other, type FROM (
  (SELECT 0 AS phase, id, dst AS other, type FROM edges WHERE src = $1 ORDER BY id LIMIT $2)
  UNION ALL
  (SELECT 1, id, src, type FROM edges WHERE dst = $1 ORDER BY id LIMIT $2)) n
ORDER BY phase, id LIMIT $2`
	pgTwoHop = `SELECT count(*) FROM (
  SELECT dst AS x FROM edges WHERE src = $1
  UNION
  SELECT e2.dst FROM edges e1 JOIN edges e2 ON e2.src = e1.dst WHERE e1.src = $1) r
WHERE x <> $1`
	// pgAllNeighbors is every edge at a node, for checking a page outside
	// the timed questions: its id, source, other end and type; a self-loop
	// comes twice (out and in).
	pgAllNeighbors = `SELECT id, src, dst, type FROM edges WHERE src = $1
  UNION ALL SELECT id, src, src, type FROM edges WHERE dst = $1`
	pgPath    = `SELECT shortest_path_len($1, $2)`
	pgConnect = `INSERT INTO edges (id, src, dst, type) VALUES ($1, $2, $3, $4)`
)

// pgSide asks PostgreSQL; pid is the postmaster's, whose process tree is
// the server.
type pgSide struct {
	conn *pgx.Conn
	pid  int
}

// connectPG connects to url and prepares the session: the path search's
// temporary table.
func connectPG(ctx context.Context, url string, pid int) (*pgSide, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	if _, err := conn.Exec(ctx, pgSessionSetup); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("postgres session: %w", err)
	}
	return &pgSide{conn: conn, pid: pid}, nil
}

func (p *pgSide) name() string { return "pg" }

func (p *pgSide) close(ctx context.Context) error { return p.conn.Close(ctx) }

func (p *pgSide) cpu() (time.Duration, error) { return processCPU(p.pid, true) }

func (p *pgSide) ping(ctx context.Context) error {
	var one int
	return p.conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

func (p *pgSide) degree(ctx context.Context, node int) (degrees, error) {
	var d degrees
	err := p.conn.QueryRow(ctx, pgDegree, node).Scan(&d.Out, &d.In)
	return d, err
}

func (p *pgSide) neighbors(ctx context.Context, node, limit int) ([]peerEdge, error) {
	rows, err := p.conn.Query(ctx, pgNeighbors, node, limit)
	if err != nil {
		return nil, err
	}
	var out []peerEdge
	var e peerEdge
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &e.Node, &e.Type}, func() error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// allNeighbors returns every edge at node: its out-edges and in-edges.
func (p *pgSide) allNeighbors(ctx context.Context, node int) (out, in []peerEdge, err error) {
	rows, err := p.conn.Query(ctx, pgAllNeighbors, node)
	if err != nil {
		return nil, nil, err
	}
	var e peerEdge
	var src int
	_, err = pgx.ForEachRow(rows, []any{&e.ID, &src, &e.Node, &e.Type}, func() error {
		if src == node {
			out = append(out, e)
		} else {
			in = append(in, e)
		}
		return nil
	})
	return out, in, err
}

func (p *pgSide) twoHop(ctx context.Context, node int) (int, error) {
	var n int
	err := p.conn.QueryRow(ctx, pgTwoHop, node).Scan(&n)
	return n, err
}

func (p *pgSide) path(ctx context.Context, from, to int) (int, error) {
	var n *int
	if err := p.conn.QueryRow(ctx, pgPath, from, to).Scan(&n); err != nil {
		return 0, err
	}
	if n == nil {
		return noPath, nil
	}
	return *n, nil
}

func (p *pgSide) connect(ctx context.Context, e peerWrite) error {
	_, err := p.conn.Exec(ctx, pgConnect, e.ID, e.Src, e.Dst, e.Type)
	return err
}

// load creates the schema and loads w with COPY, then builds the indexes
// and analyses the tables (VACUUM ANALYZE, so that the degree counts are
// index-only scans): what one would do to load a graph in bulk.
func (p *pgSide) load(ctx context.Context, w Workload) error {
	if _, err := p.conn.Exec(ctx, pgSchema); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	if _, err := p.conn.Exec(ctx, pgPathFunc); err != nil {
		return fmt.Errorf("path function: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	batches := make(chan []*cairnv1.Command, 4)
	gen := make(chan error, 1)
	go func() {
		defer close(batches)
		gen <- w.Generate(1000, func(cmds []*cairnv1.Command) error {
			select {
			case batches <- cmds:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			}
		})
	}()
	// Generate sends every node, then every edge, and never mixes them in
	// a batch: one COPY for the nodes, then one for the edges, each
	// pulling rows from the batches in turn.
	var cur []*cairnv1.Command // the batch being copied
	next := func(nodes bool) ([]any, error) {
		if len(cur) == 0 {
			b, ok := <-batches
			if !ok {
				return nil, nil
			}
			cur = b
		}
		c := cur[0]
		if an := c.GetAddNode(); an != nil {
			if !nodes {
				return nil, fmt.Errorf("node %s after the first edge", an.GetNodeId())
			}
			cur = cur[1:]
			return pgNodeRow(an)
		}
		if nodes {
			return nil, nil // the first edge: the nodes are done, it stays in cur
		}
		cur = cur[1:]
		return pgEdgeRow(c.GetConnectNodes())
	}
	// stop stops the generator and waits for it.
	stop := func(err error) error {
		cancel(err)
		for range batches {
		}
		<-gen
		return err
	}
	if _, err := p.conn.CopyFrom(ctx, pgx.Identifier{"nodes"}, []string{"id", "category", "components"},
		pgx.CopyFromFunc(func() ([]any, error) { return next(true) })); err != nil {
		return stop(fmt.Errorf("copy nodes: %w", err))
	}
	if _, err := p.conn.CopyFrom(ctx, pgx.Identifier{"edges"}, []string{"id", "src", "dst", "type"},
		pgx.CopyFromFunc(func() ([]any, error) { return next(false) })); err != nil {
		return stop(fmt.Errorf("copy edges: %w", err))
	}
	if err := <-gen; err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	if _, err := p.conn.Exec(ctx, pgIndexes); err != nil {
		return fmt.Errorf("indexes: %w", err)
	}
	if _, err := p.conn.Exec(ctx, "VACUUM ANALYZE nodes, edges"); err != nil {
		return fmt.Errorf("vacuum analyze: %w", err)
	}
	return nil
}

// pgNodeRow is a nodes row: id, category (NULL for none), components as a
// JSON object of type to value.
func pgNodeRow(an *cairnv1.AddNode) ([]any, error) {
	id, err := numericID(an.GetNodeId(), "n")
	if err != nil {
		return nil, err
	}
	var cat *string
	if cs := an.GetCategories(); len(cs) > 0 {
		cat = &cs[0]
	}
	comps := make(map[string]string, len(an.GetComponents()))
	for _, c := range an.GetComponents() {
		comps[c.GetType()] = string(c.GetValue())
	}
	js, err := json.Marshal(comps)
	if err != nil {
		return nil, err
	}
	return []any{int32(id), cat, string(js)}, nil
}

// pgEdgeRow is an edges row: id, source, target, type.
func pgEdgeRow(cn *cairnv1.ConnectNodes) ([]any, error) {
	id, err1 := numericID(cn.GetEdgeId(), "e")
	src, err2 := numericID(cn.GetSource(), "n")
	dst, err3 := numericID(cn.GetTarget(), "n")
	typ, err4 := edgeTypeNum(cn.GetEdgeType())
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, err
	}
	return []any{int32(id), int32(src), int32(dst), int16(typ)}, nil
}

// numericID is i for the generated id prefix+i ("n12" is 12).
func numericID(id, prefix string) (int, error) {
	n, err := strconv.Atoi(strings.TrimPrefix(id, prefix))
	if err != nil || !strings.HasPrefix(id, prefix) || n < 0 {
		return 0, fmt.Errorf("id %q is not %s<number>", id, prefix)
	}
	return n, nil
}

// edgeTypeNum is k for the edge type "r<k>", -1 for none.
func edgeTypeNum(t string) (int, error) {
	if t == "" {
		return -1, nil
	}
	return numericID(t, "r")
}

// edgeTypeName is edgeTypeNum's inverse.
func edgeTypeName(k int) string {
	if k < 0 {
		return ""
	}
	return "r" + strconv.Itoa(k)
}
