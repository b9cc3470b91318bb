package cairn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/cairn-graph/cairn/api"
	"github.com/cairn-graph/cairn/auth"
)

// An adapter's stream, created by the engine (api.AdapterStreamSubject).
// No client login may create a stream: NATS permissions see the subject
// $JS.API.STREAM.CREATE.<name> but not the subjects the stream would
// capture, so a login allowed to create one stream could make it capture
// the engine's command subjects and have JetStream answer clients'
// commands with its acknowledgements. The engine creates an adapter
// user's stream after checking it (auth.User.CheckAdapterStream).

// adapterStream creates or confirms the stream req names for the user
// whose inbox reply is in (actors.GatewayConfig.AdapterStream).
func (e *Engine) adapterStream(ctx context.Context, reply string, req api.AdapterStreamRequest) api.AdapterStreamReply {
	refuse := func(code, format string, a ...any) api.AdapterStreamReply {
		return api.AdapterStreamReply{Code: code, Error: fmt.Sprintf(format, a...)}
	}
	if e.cfg.Auth == nil {
		rep := refuse("FAILED_PRECONDITION", "this engine has no users (cairn serve without --auth): create stream %s through JetStream", req.Stream)
		rep.Open = true
		return rep
	}
	u, ok := userOf(e.cfg.Auth, reply)
	if !ok {
		return refuse("PERMISSION_DENIED", "reply subject %q names no user of this engine: cannot tell who asks for stream %s", reply, req.Stream)
	}
	if err := u.CheckAdapterStream(req.Stream, req.Subjects, e.cfg.authStreams()); err != nil {
		code := "PERMISSION_DENIED"
		if errors.Is(err, auth.ErrBadSubject) {
			code = "INVALID_ARGUMENT"
		}
		return refuse(code, "stream %s capturing %v: %v", req.Stream, req.Subjects, err)
	}
	js, err := jetstream.New(e.nc)
	if err != nil {
		return refuse("UNAVAILABLE", "jetstream: %v", err)
	}
	want := jetstream.StreamConfig{
		Name: req.Stream, Subjects: req.Subjects, Storage: jetstream.FileStorage,
		Description: "source events of the Cairn adapters of user " + u.Name + " (created by the engine)",
	}
	for range 2 { // a second time when another request created it meanwhile
		st, err := js.Stream(ctx, req.Stream)
		if err == nil {
			return existing(st.CachedInfo().Config, req)
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return refuse(streamCode(err), "look up stream %s: %v", req.Stream, err)
		}
		st, err = js.CreateStream(ctx, want)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			continue
		}
		if err != nil {
			return refuse(streamCode(err), "create stream %s capturing %v: %v", req.Stream, req.Subjects, err)
		}
		e.cfg.Logger.LogAttrs(ctx, slog.LevelInfo, "adapter stream created", slog.String("stream", req.Stream),
			slog.Any("subjects", req.Subjects), slog.String("user", u.Name))
		return api.AdapterStreamReply{Created: true, Config: adapterStreamConfig(st.CachedInfo().Config)}
	}
	return refuse("UNAVAILABLE", "stream %s: created and gone again meanwhile; ask again", req.Stream)
}

// existing confirms a stream that exists when it captures the subjects
// asked for, and refuses it otherwise.
func existing(cfg jetstream.StreamConfig, req api.AdapterStreamRequest) api.AdapterStreamReply {
	have, want := slices.Sorted(slices.Values(cfg.Subjects)), slices.Sorted(slices.Values(req.Subjects))
	if !slices.Equal(have, want) {
		return api.AdapterStreamReply{Config: adapterStreamConfig(cfg), Code: "FAILED_PRECONDITION",
			Error: fmt.Sprintf("stream %s exists capturing %v, not %v: an admin of the NATS server must change or delete it", cfg.Name, cfg.Subjects, req.Subjects)}
	}
	return api.AdapterStreamReply{Existing: true, Config: adapterStreamConfig(cfg)}
}

func adapterStreamConfig(cfg jetstream.StreamConfig) *api.AdapterStreamConfig {
	storage := "file"
	if cfg.Storage == jetstream.MemoryStorage {
		storage = "memory"
	}
	return &api.AdapterStreamConfig{Name: cfg.Name, Subjects: cfg.Subjects, Storage: storage, Description: cfg.Description}
}

// streamCode is the wire code of JetStream's refusal: its API errors
// (subjects that overlap another stream's, a limit reached) are the
// request's, the others the server's.
func streamCode(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.Code < 500 {
		return "FAILED_PRECONDITION"
	}
	return "UNAVAILABLE"
}
