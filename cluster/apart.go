package cluster

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/internal/jsleader"
)

// apartEvery is how often the member with the least id checks that the
// membership bucket's leader leads none of KVConfig.ApartFrom.
const apartEvery = 2 * time.Second

// apart keeps the bucket's leader off the nodes that lead the streams of
// KVConfig.ApartFrom (see there): every apartEvery, on the member with
// the least id, it reads the leaders and, when the bucket shares its
// leader with one of them, asks the bucket's leader to step down in
// favour of a current replica that leads none of them.
func (p *kvProvider) apart() {
	defer p.wg.Done()
	t := time.NewTicker(apartEvery)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.fenced:
			return
		case <-t.C:
		}
		ids := p.ids.Load()
		if ids == nil || len(*ids) == 0 || (*ids)[0] != p.key {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), apartEvery/2)
		moved, err := p.keepApart(ctx)
		cancel()
		switch {
		case err != nil:
			p.log.Debug("could not check the membership bucket's leader", slog.String("err", err.Error()))
		case moved != "":
			p.log.Info("the membership bucket's leader also led a stream it keeps apart from; it stepped down", slog.String("from", moved))
		}
	}
}

// keepApart does one round of apart and returns the node the bucket's
// leadership was moved off, "" when it stayed.
func (p *kvProvider) keepApart(ctx context.Context) (string, error) {
	bucket := "KV_" + p.cfg.Bucket
	info, err := p.streamCluster(ctx, bucket)
	if err != nil || info.Leader == "" {
		return "", err
	}
	busy := map[string]bool{}
	for _, name := range p.cfg.ApartFrom {
		other, err := p.streamCluster(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		busy[other.Leader] = true
	}
	if !busy[info.Leader] {
		return "", nil
	}
	to, err := jsleader.StepDown(ctx, p.cfg.JetStream.Conn(), bucket, info, func(name string) bool { return busy[name] })
	if err != nil || to == "" {
		return "", err // no replica to move to (yet): next round
	}
	return info.Leader, nil
}

// streamCluster returns the cluster part (leader and replicas) of
// stream's info.
func (p *kvProvider) streamCluster(ctx context.Context, stream string) (*jetstream.ClusterInfo, error) {
	s, err := p.cfg.JetStream.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	if c := s.CachedInfo().Cluster; c != nil {
		return c, nil
	}
	return &jetstream.ClusterInfo{}, nil
}
