package actors

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/cairn-graph/cairn/persistence"
	"github.com/cairn-graph/cairn/readmodel"
	"github.com/cairn-graph/cairn/viewer/scene"
)

// keyframe loads the newest read-model snapshot of the graph with a
// sequence above above and (stop > 0) at most stop whose head the source
// confirms; nil when there is none. A snapshot that fails a check is
// logged and passed over for the next older one.
func (r *Render) keyframe(ctx context.Context, above, stop uint64) *renderKeyframe {
	for _, info := range r.candidates(ctx, persistence.KindReadModel, above, stop) {
		data, err := r.fetch(ctx, info, readmodel.ReadsFormat)
		var g *readmodel.Graph
		if err == nil {
			g, err = readmodel.LoadSnapshot(data, r.cfg.ReadModel)
		}
		if err == nil && (g.ID() != r.cfg.Graph || g.AsOf() != info.Seq) {
			err = fmt.Errorf("holds graph %s as of seq %d", g.ID(), g.AsOf())
		}
		if err != nil {
			r.log.LogAttrs(ctx, slog.LevelWarn, "keyframe passed over", slog.String("name", info.Name), slog.String("err", err.Error()))
			continue
		}
		return &renderKeyframe{g: g, head: persistence.Head{N: info.Position, CID: info.Head}}
	}
	return nil
}

// layoutKeyframe fetches the newest position keyframe of the graph above
// above and at or before stop (stop 0: any) whose head the source confirms
// and that this render can take; nil when there is none. Its payload is decoded by the actor (Scene.LoadKeyframe), which
// checks it bound by bound.
func (r *Render) layoutKeyframe(ctx context.Context, above, stop uint64) *renderLayout {
	for _, info := range r.candidates(ctx, persistence.KindLayout, above, stop) {
		data, err := r.fetch(ctx, info, func(v uint32) bool { return v == scene.KeyframeFormat })
		if err == nil {
			err = r.fits(data)
		}
		if err != nil {
			r.log.LogAttrs(ctx, slog.LevelWarn, "layout keyframe passed over", slog.String("name", info.Name), slog.String("err", err.Error()))
			continue
		}
		return &renderLayout{data: data, info: info}
	}
	return nil
}

// fits loads a keyframe into a scene and Placer made as the render makes
// its own, so that one this render cannot take (another colour component,
// a Placer of other parameters or without state) is passed over here,
// before the reader commits to its seq, instead of stopping the render.
// It costs a second decode of the keyframe.
func (r *Render) fits(data []byte) error {
	var placer scene.Placer
	if r.cfg.NewPlacer != nil {
		placer = r.cfg.NewPlacer()
	}
	return scene.New(r.cfg.Graph, placer, r.cfg.Scene...).LoadKeyframe(data, placer)
}

// candidates lists the graph's snapshots of kind with a sequence above
// above and (stop > 0) at most stop, newest first; none without
// Snapshots or when the listing fails (logged).
func (r *Render) candidates(ctx context.Context, kind persistence.SnapshotKind, above, stop uint64) []persistence.SnapshotInfo {
	if r.cfg.Snapshots == nil {
		return nil
	}
	infos, err := r.cfg.Snapshots.List(ctx, kind, r.cfg.Graph)
	if err != nil {
		r.log.LogAttrs(ctx, slog.LevelWarn, "list keyframes", slog.String("kind", string(kind)), slog.String("err", err.Error()))
		return nil
	}
	infos = slices.DeleteFunc(infos, func(i persistence.SnapshotInfo) bool { return i.Seq <= above || stop > 0 && i.Seq > stop })
	slices.SortFunc(infos, func(a, b persistence.SnapshotInfo) int { return cmp.Compare(b.Seq, a.Seq) })
	return infos
}

// fetch checks that info is of a format reads takes and that the source
// confirms its head (the graph's transaction at info.Seq ends with it),
// then fetches its payload.
func (r *Render) fetch(ctx context.Context, info persistence.SnapshotInfo, reads func(uint32) bool) ([]byte, error) {
	switch {
	case !reads(info.Format):
		return nil, fmt.Errorf("unknown format %d (this build does not read it)", info.Format)
	case info.Seq == 0 || info.Position == 0 || !info.Head.Defined():
		return nil, fmt.Errorf("names no head (seq %d, position %d)", info.Seq, info.Position)
	}
	if err := r.cfg.Source.CheckHead(ctx, r.cfg.Graph, info.Seq, persistence.Head{N: info.Position, CID: info.Head}); err != nil {
		return nil, fmt.Errorf("head not confirmed by the event store: %w", err)
	}
	return r.cfg.Snapshots.Get(ctx, info)
}

// saveLayout stores one position keyframe; it runs on its own goroutine,
// one at a time.
func (r *Render) saveLayout(info persistence.SnapshotInfo, data []byte) {
	defer r.wg.Done()
	defer r.saving.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := r.cfg.Snapshots.Put(ctx, info, data); err != nil {
		r.saveErrs.Do(func() {
			r.log.LogAttrs(ctx, slog.LevelWarn, "layout keyframe not saved (logged once)", slog.Uint64("seq", info.Seq), slog.String("err", err.Error()))
		})
		return
	}
	r.layouts.Add(1)
}
