package main

import (
	"bytes"
	"testing"
	"time"
)

func TestRetentionAndTokenCacheSettings(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		retention time.Duration
		ttl       time.Duration
	}{
		// The token cache is off unless an operator opts in: a revoked
		// token must stop at once in every process.
		{"defaults", nil, nil, 90 * 24 * time.Hour, 0},
		{"days", []string{"--event-retention", "30d"}, nil, 30 * 24 * time.Hour, 0},
		{"environment", nil, map[string]string{"APIV4_EVENT_RETENTION": "2160h",
			"APIV4_TOKEN_CACHE_TTL": "5s"}, 90 * 24 * time.Hour, 5 * time.Second},
		{"flag over environment", []string{"--token-cache-ttl", "1s"},
			map[string]string{"APIV4_TOKEN_CACHE_TTL": "0"}, 90 * 24 * time.Hour, time.Second},
		{"keep forever", []string{"--event-retention", "0"}, nil, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg config
			fs := flagSet("test", &bytes.Buffer{})
			cfg.flags(fs, func(k string) string { return tt.env[k] })
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if cfg.EventRetention != tt.retention || cfg.TokenCacheTTL != tt.ttl {
				t.Errorf("retention %v ttl %v, want %v %v",
					cfg.EventRetention, cfg.TokenCacheTTL, tt.retention, tt.ttl)
			}
		})
	}
	for _, bad := range []string{"-1d", "soon", "1.5d"} {
		var cfg config
		fs := flagSet("test", &bytes.Buffer{})
		cfg.flags(fs, noEnv)
		if err := fs.Parse([]string{"--event-retention", bad}); err == nil {
			t.Errorf("--event-retention %s: no error", bad)
		}
	}
}
