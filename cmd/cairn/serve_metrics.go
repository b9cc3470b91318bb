package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cairn-graph/cairn"
	"github.com/cairn-graph/cairn/metrics"
)

// probes is serve's HTTP listener (--metrics-listen): /metrics, /healthz
// and /readyz. It listens before the engine opens, so that a liveness
// probe passes and a readiness probe waits while the engine starts.
type probes struct {
	srv  *http.Server
	url  string
	eng  atomic.Pointer[cairn.Engine]
	done chan struct{}
}

// startProbes listens on addr and serves m and the probes, and with
// profiles the Go runtime's profiles under /debug/pprof/ (serve --pprof).
func startProbes(addr string, m *metrics.Metrics, profiles bool, log *slog.Logger) (*probes, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen %s: %w", addr, err)
	}
	p := &probes{url: "http://" + ln.Addr().String(), done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", p.ready)
	if profiles {
		mux.HandleFunc("/debug/pprof/", httppprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	}
	p.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(p.done)
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.LogAttrs(context.Background(), slog.LevelError, "metrics listener failed", slog.String("err", err.Error()))
		}
	}()
	return p, nil
}

// ready answers 200 "ready" when the engine is ready, else 503 with one
// line per condition that does not hold.
func (p *probes) ready(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	eng := p.eng.Load()
	var err error
	if eng == nil {
		err = errors.New("the engine is starting")
	} else {
		err = eng.Ready()
	}
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "not ready:")
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(w, line)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}

// close stops the listener, waiting at most until ctx ends for requests
// being answered.
func (p *probes) close(ctx context.Context) error {
	err := p.srv.Shutdown(ctx)
	<-p.done
	return err
}
