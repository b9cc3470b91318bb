package workers

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// A worker that finished waits for the next function: functions given one
// after another, each once a worker is idle, all run on the first worker.
func TestPoolReusesIdleWorker(t *testing.T) {
	p := New(time.Minute)
	for range 20 {
		ran := make(chan struct{})
		p.Go(func() { close(ran) })
		<-ran
		waitIdle(t, p)
	}
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started != 1 {
		t.Fatalf("%d workers started for 20 functions one after another, want 1", started)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// waitIdle waits until a worker waits for a function (a send would be
// taken), without sending one.
func waitIdle(t *testing.T, p *Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		done := make(chan struct{})
		select {
		case p.tasks <- func() { close(done) }:
			<-done
			return
		default:
		}
		time.Sleep(time.Millisecond) // polling another goroutine's state
	}
	t.Fatal("no worker became idle")
}

// An idle worker exits after the idle time; the next function starts a
// new worker.
func TestPoolWorkerExitsWhenIdle(t *testing.T) {
	p := New(10 * time.Millisecond)
	ran := make(chan struct{})
	p.Go(func() { close(ran) })
	<-ran
	exited := make(chan struct{})
	go func() { p.wg.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle worker did not exit")
	}
	ran = make(chan struct{})
	p.Go(func() { close(ran) })
	<-ran
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if started != 2 {
		t.Fatalf("%d workers started, want 2 (the first exited)", started)
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Close waits for a running function; with a ctx that ends first it
// returns ctx's error. A function given after Close still runs.
func TestPoolClose(t *testing.T) {
	p := New(time.Minute)
	release := make(chan struct{})
	started := make(chan struct{})
	p.Go(func() { close(started); <-release })
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a running function and a short ctx = %v, want DeadlineExceeded", err)
	}
	closed := make(chan error, 1)
	go func() { closed <- p.Close(context.Background()) }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned %v while a function ran", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	after := make(chan struct{})
	p.Go(func() { close(after) })
	select {
	case <-after:
	case <-time.After(10 * time.Second):
		t.Fatal("a function given after Close did not run")
	}
}

// Many functions at once all run, on as many workers as needed.
func TestPoolConcurrent(t *testing.T) {
	p := New(time.Second)
	const n = 200
	var wg sync.WaitGroup
	wg.Add(n)
	block := make(chan struct{})
	for range n {
		p.Go(func() { <-block; wg.Done() })
	}
	close(block)
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
