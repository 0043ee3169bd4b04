package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	log := cfg.logger(stderr)
	log.InfoContext(ctx, "starting", "addr", cfg.Addr, "database", maskURL(cfg.DatabaseURL),
		"sim_duration", cfg.SimDuration.String(), "sim_fail_rate", cfg.SimFailRate,
		"workers", cfg.Workers, "log_level", cfg.LogLevel, "rate_limit", cfg.RateLimit,
		"auth_fail_limit", cfg.AuthFailLimit, "request_timeout", cfg.RequestTimeout.String(),
		"read_timeout", cfg.ReadTimeout.String(),
		"job_lease", cfg.JobLease.String())

	store, err := db.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()

	runner := job.New(store, job.Sim{Duration: cfg.SimDuration, Steps: 4, FailRate: cfg.SimFailRate},
		job.Config{Workers: cfg.Workers, Lease: cfg.JobLease}, log)
	handler, err := impl.NewHandler(store, runner, log,
		impl.WithTokenRate(impl.Rate{Burst: cfg.RateLimit, Per: time.Minute}),
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
	// 10 s, the whole request within the read timeout, and the answer
	// is cut off once reading and handling could not take longer.
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
		maskURL(cfg.DatabaseURL)+" --username YOU")

	runCtx, stopRunner := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { runner.Run(runCtx) })

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err = <-served:
	case <-ctx.Done():
		log.Info("stopping")
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
