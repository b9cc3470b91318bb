package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/persistence"
)

// The kinds of kill the chaos scenario counts.
const (
	killMember = "member"             // a member (with its embedded node, if any)
	killNATS   = "NATS node"          // a bare NATS node that led no event stream
	killLeader = "NATS stream leader" // the bare node that led the event stream
)

// chaosKiller is the chaos scenario's kill schedule: it kills a random
// process every KillEvery on average and restarts it Down (a NATS node
// NATSDown) later in the background, so that the kills can overlap, within
// the quorum rules.
type chaosKiller struct {
	cfg            ChaosConfig
	js             jetstream.JetStream
	mu             *sync.Mutex // guards the processes' p and up
	nodes, members []*chaosMember
	meter          *Meter
	live           io.Writer
	started        time.Time

	kills    map[string]int
	notes    []string
	deferred int // kills that waited for a restart (nothing could be killed)
	mostDown int // most processes down at once
	notesMu  sync.Mutex
}

func (k *chaosKiller) total() int {
	n := 0
	for _, c := range k.kills {
		n += c
	}
	return n
}

// maxNATSDown is how many bare NATS nodes may be down at once: fewer than
// half, so that every stream (replicas chaosReplicas) keeps a quorum.
func (k *chaosKiller) maxNATSDown() int { return (len(k.nodes) - 1) / 2 }

// killable returns the processes that may be killed now: members while
// another member is up (without bare nodes, while no other member is
// down: each embeds a node), NATS nodes while fewer than maxNATSDown are
// down. Called with k.mu held.
func (k *chaosKiller) killable() (members, nodes []*chaosMember, down int) {
	upMembers, downNodes := 0, 0
	for _, m := range k.members {
		if m.up {
			upMembers++
		}
	}
	for _, n := range k.nodes {
		if !n.up {
			downNodes++
		}
	}
	down = len(k.members) - upMembers + downNodes
	for _, m := range k.members {
		if !m.up {
			continue
		}
		if len(k.nodes) == 0 && upMembers < len(k.members) {
			continue // embedded: one member (and its node) down at a time
		}
		if upMembers >= 2 {
			members = append(members, m)
		}
	}
	if downNodes < k.maxNATSDown() {
		for _, n := range k.nodes {
			if n.up {
				nodes = append(nodes, n)
			}
		}
	}
	return members, nodes, down
}

// streamLeader is the name of the NATS node that leads the event stream
// now, "" when it cannot be told within a second.
func (k *chaosKiller) streamLeader(ctx context.Context) string {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	s, err := k.js.Stream(cctx, persistence.DefaultStoreConfig().Stream)
	if err != nil {
		return ""
	}
	if info := s.CachedInfo(); info.Cluster != nil {
		return info.Cluster.Leader
	}
	return ""
}

func (k *chaosKiller) note(s string) {
	k.notesMu.Lock()
	k.notes = append(k.notes, s)
	k.notesMu.Unlock()
	if k.live != nil {
		fmt.Fprintf(k.live, "chaos: %s\n", s)
	}
}

// run kills until loadCtx ends, then waits until every restart is ready.
// It returns the first restart that failed.
func (k *chaosKiller) run(ctx, loadCtx context.Context) error {
	k.kills = map[string]int{}
	rng := rand.New(rand.NewPCG(k.cfg.Seed, k.cfg.Seed^0x5eed))
	var restarts sync.WaitGroup
	errs := make(chan error, 1)
	defer restarts.Wait()
	for n := 1; ; {
		wait := k.cfg.KillEvery/2 + time.Duration(rng.Int64N(int64(k.cfg.KillEvery)))
		select {
		case <-time.After(wait):
		case <-loadCtx.Done():
			restarts.Wait()
			select {
			case err := <-errs:
				return err
			default:
				return nil
			}
		case err := <-errs:
			return err
		}
		// Nothing may be killed while the last kills' restarts keep too
		// much down: the kill waits for them.
		var members, nodes []*chaosMember
		for waited := false; ; waited = true {
			k.mu.Lock()
			members, nodes, _ = k.killable()
			k.mu.Unlock()
			if len(members) > 0 || len(nodes) > 0 {
				break
			}
			if !waited {
				k.deferred++
			}
			select {
			case <-time.After(50 * time.Millisecond):
			case <-loadCtx.Done():
			case err := <-errs:
				return err
			}
			if loadCtx.Err() != nil {
				break
			}
		}
		if loadCtx.Err() != nil {
			continue // the top of the loop waits for the restarts
		}
		// With bare nodes the first three kills take the event stream's
		// leader, a member and another node, so that a short run has
		// each kind; then a member or a node at random, half of the
		// node kills aiming at the stream's leader.
		var victim *chaosMember
		kind := killMember
		takeMember := len(nodes) == 0 || (len(members) > 0 && rng.IntN(2) == 0)
		aim := rng.IntN(2) == 0
		if len(k.nodes) > 0 && n <= 3 {
			takeMember, aim = n == 2 && len(members) > 0 || len(nodes) == 0, n == 1
		}
		if takeMember {
			victim = members[rng.IntN(len(members))]
		} else {
			leader := k.streamLeader(ctx)
			var others []*chaosMember
			for _, node := range nodes {
				if node.name == leader && aim {
					victim = node
				}
				if node.name != leader {
					others = append(others, node)
				}
			}
			switch {
			case victim != nil:
			case len(others) > 0:
				victim = others[rng.IntN(len(others))]
			default:
				victim = nodes[rng.IntN(len(nodes))]
			}
			kind = killNATS
			if victim.name == leader {
				kind = killLeader
			}
		}
		k.mu.Lock()
		pid := victim.p.cmd.Process.Pid
		victim.p.kill()
		victim.p, victim.up = nil, false
		_, _, down := k.killable()
		k.mostDown = max(k.mostDown, down)
		k.mu.Unlock()
		k.kills[kind]++
		at := time.Since(k.started)
		downFor := k.cfg.Down
		if victim.nats {
			downFor = k.cfg.NATSDown
		}
		what := fmt.Sprintf("kill %d at %.1f s: %s %s (pid %d), %d down with it", n, at.Seconds(), kind, victim.name, pid, down)
		n++
		restarts.Add(1)
		go func() {
			defer restarts.Done()
			ready, err := k.restart(ctx, victim, downFor)
			if err != nil {
				select {
				case errs <- fmt.Errorf("%s: %w", what, err):
				default:
				}
				return
			}
			k.meter.Record(OpChaosRestart, 1, ready, nil)
			k.note(fmt.Sprintf("%s; down %s, ready %s after its restart", what, downFor, ready.Round(time.Millisecond)))
		}()
	}
}

// restart waits down, starts m again and waits until it is ready.
func (k *chaosKiller) restart(ctx context.Context, m *chaosMember, down time.Duration) (time.Duration, error) {
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	p, err := m.start(k.cfg.Binary)
	if err != nil {
		return 0, fmt.Errorf("restart %s: %w", m.name, err)
	}
	k.mu.Lock()
	m.p = p
	k.mu.Unlock()
	if err := p.waitReady(ctx, k.cfg.Timeout); err != nil {
		return 0, fmt.Errorf("restart %s: %w", m.name, err)
	}
	k.mu.Lock()
	m.up = true
	k.mu.Unlock()
	return time.Since(p.started), nil
}

// chaosReplicas is the replicas of the streams and buckets on cfg.NATS
// bare nodes: 5 from 5 nodes on, else 3, so that no more than
// (cfg.NATS-1)/2 nodes down ever leave a stream without a quorum of its
// replicas... for 3 and 5 nodes; more nodes keep 5 replicas.
func chaosReplicas(cfg ChaosConfig) int {
	if cfg.NATS >= 5 {
		return 5
	}
	return 3
}

// chaosExternal lays out cfg.NATS bare NATS nodes (n0, …) and cfg.Members
// members (m0, …) on them: data directories, fixed client, route and
// remote addresses, one shared signing key, and their command lines.
func chaosExternal(cfg ChaosConfig, dir string) (nodes, members []*chaosMember, err error) {
	key, err := chaosKey(dir)
	if err != nil {
		return nil, nil, err
	}
	ports, err := freePorts(2*cfg.NATS + cfg.Members)
	if err != nil {
		return nil, nil, err
	}
	addr := func(i int) string { return "127.0.0.1:" + strconv.Itoa(ports[i]) }
	var routes, urls []string
	for i := range cfg.NATS {
		n := &chaosMember{name: "n" + strconv.Itoa(i), dir: filepath.Join(dir, "n"+strconv.Itoa(i)), client: addr(2 * i), route: addr(2*i + 1), nats: true}
		if cfg.DataDir != "" {
			n.log = filepath.Join(dir, n.name+".log")
		}
		routes = append(routes, "nats-route://"+n.route)
		urls = append(urls, "nats://"+n.client)
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		n.argv = []string{"nats-node", "--data", n.dir, "--nats-listen", n.client, "--name", n.name,
			"--nats-cluster-listen", n.route, "--nats-routes", strings.Join(routes, ","), "--json"}
		if !cfg.NoSyncAlways {
			n.argv = append(n.argv, "--sync-always")
		}
	}
	for i := range cfg.Members {
		m := &chaosMember{name: "m" + strconv.Itoa(i), remote: addr(2*cfg.NATS + i)}
		if cfg.DataDir != "" {
			m.log = filepath.Join(dir, m.name+".log")
		}
		m.argv = append([]string{"serve", "--nats", strings.Join(urls, ","), "--json", "--cluster", chaosCluster, "--cluster-listen", m.remote,
			"--replicas", strconv.Itoa(chaosReplicas(cfg)), "--signing-key", key}, cfg.ServeArgs...)
		members = append(members, m)
	}
	return nodes, members, nil
}
