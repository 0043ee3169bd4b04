package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"

	"apiv4/db"
	"apiv4/impl"
	"apiv4/job"
)

// serve runs the API server and this process's job runner until ctx ends,
// then drains in-flight requests and hands leased jobs back.
func serve(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	var cfg config
	fs := flagSet("apiv4 serve", stderr)
	cfg.flags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := cfg.validate(); err != nil {
		return err
	}
	logs := newLineBuffer(stderr, 200*time.Millisecond)
	defer logs.Close()
	log := cfg.logger(logs)
	tuneGC(getenv)
	log.InfoContext(ctx, "starting", "addr", cfg.Addr, "database", maskURL(cfg.DatabaseURL),
		"sim_duration", cfg.SimDuration.String(), "sim_fail_rate", cfg.SimFailRate,
		"sim_backup_unavailable_rate", cfg.SimUnavailableRate,
		"ipv4_pool", cfg.Store.PublicIPv4.String(), "ipv4_private_pool", cfg.Store.PrivateIPv4.String(),
		"ipv6_pool", cfg.Store.IPv6.String(), "rdns_domain", cfg.Store.RDNSDomain,
		"backup_interval", cfg.Store.BackupInterval.String(),
		"workers", cfg.Workers, "stream_keepalive", cfg.StreamKeepAlive.String(),
		"event_retention", cfg.EventRetention.String(), "token_cache_ttl", cfg.TokenCacheTTL.String(),
		"rate_limit", cfg.RateLimit, "auth_fail_limit", cfg.AuthFailLimit, "stream_limit", cfg.StreamLimit,
		"request_timeout", cfg.RequestTimeout.String(), "read_timeout", cfg.ReadTimeout.String(),
		"job_lease", cfg.JobLease.String(), "log_level", cfg.LogLevel, "log_format", cfg.LogFormat)

	store, err := db.Open(ctx, cfg.DatabaseURL, db.WithMaxConns(cfg.DBMaxConns))
	if err != nil {
		return err
	}
	defer store.Close()
	store.SetTokenCacheTTL(cfg.TokenCacheTTL)

	if err := store.SetConfig(cfg.Store); err != nil {
		return err
	}
	sim := job.Sim{Duration: cfg.SimDuration, Steps: 4, FailRate: cfg.SimFailRate,
		UnavailableRate: cfg.SimUnavailableRate}
	// Due backups are looked for every quarter of the interval, and at
	// least once every five seconds, however long the interval.
	scan := min(5*time.Second, max(10*time.Millisecond, cfg.Store.BackupInterval/4))
	runner := job.New(store, sim,
		job.Config{Workers: cfg.Workers, Lease: cfg.JobLease, BackupScan: scan}, log)
	stopping := make(chan struct{})
	handler, err := impl.NewHandler(store, runner, log,
		impl.WithMetrics(impl.NewMetrics(store, log)),
		impl.WithStreams(cfg.StreamKeepAlive, 0, stopping),
		impl.WithTokenRate(impl.Rate{Burst: cfg.RateLimit, Per: time.Minute}),
		impl.WithStreamLimit(cfg.StreamLimit),
		impl.WithAuthFailureRate(impl.Rate{Burst: cfg.AuthFailLimit, Per: time.Minute}),
		impl.WithRequestTimeout(cfg.RequestTimeout))
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	// Slow clients cannot hold a connection: headers must come within
	// 10 s, the whole request within the read timeout, and an ordinary
	// answer is cut off once reading and handling could not take longer.
	// Event streams set a deadline per frame instead.
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: min(10*time.Second, cfg.ReadTimeout),
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.ReadTimeout + cfg.RequestTimeout + 10*time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.InfoContext(ctx, "listening", "addr", ln.Addr().String())
	log.InfoContext(ctx, "get a token with: apiv4 token create --database "+
		shellQuote(maskURL(cfg.DatabaseURL))+" --username YOU")

	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { runner.Run(runCtx) })
	if cfg.EventRetention > 0 {
		pruner := job.NewPruner(store, cfg.EventRetention, log)
		wg.Go(func() { pruner.Run(runCtx) })
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("stopping")
		close(stopping) // event streams end; their clients reconnect elsewhere
		drain, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = srv.Shutdown(drain)
		cancel()
	}
	stopRunner()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

// tuneGC runs the garbage collector less often than Go's default, unless
// GOGC or GOMEMLIMIT say otherwise: the server's live heap is a few MB,
// so at GOGC=400 the heap still stays far below the 128 MiB soft limit,
// and collection takes a quarter of the CPU it took.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}
