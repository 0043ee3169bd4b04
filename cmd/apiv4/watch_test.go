package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestReadFrames(t *testing.T) {
	stream := "retry: 2000\nid: 41\n\n: keep-alive\n\nid: 42\ndata: {\"id\":7}\n\n"
	out := make(chan sseFrame, 10)
	err := readFrames(context.Background(), strings.NewReader(stream), out)
	if err == nil {
		t.Errorf("a stream that ends must be an error")
	}
	close(out)
	var got []sseFrame
	for f := range out {
		got = append(got, f)
	}
	want := []sseFrame{{id: 41, retry: 2000}, {id: 42, data: `{"id":7}`}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got frames %+v, want %+v (keep-alives dropped)", got, want)
	}
}

func TestShow(t *testing.T) {
	boot := &watchEvent{ID: 9, Action: "linode_boot", Status: "started"}
	boot.Entity = &struct {
		Label string `json:"label"`
	}{"web-1"}

	t.Run("plain", func(t *testing.T) {
		var out bytes.Buffer
		w := &watcher{cfg: watchConfig{Format: "plain"}, out: &out}
		w.show(0, nil)
		w.show(0, nil) // unchanged: not printed again
		w.show(3, boot)
		want := "0 unseen\n3 unseen · linode_boot started web-1 #9\n"
		if out.String() != want {
			t.Errorf("got %q, want %q", out.String(), want)
		}
	})

	t.Run("i3bar", func(t *testing.T) {
		var out bytes.Buffer
		w := &watcher{cfg: watchConfig{Format: "i3bar"}, out: &out}
		w.show(0, nil)
		w.show(3, boot)
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[1], ",") {
			t.Fatalf("got %q, want two status lines, the second after a comma", out.String())
		}
		var blocks []map[string]any
		if err := json.Unmarshal([]byte(strings.TrimPrefix(lines[1], ",")), &blocks); err != nil {
			t.Fatal(err)
		}
		b := blocks[0]
		if b["full_text"] != "apiv4: 3 unseen · linode_boot started web-1 #9" || b["short_text"] != "3" ||
			b["color"] != "#f1fa8c" || b["name"] != "apiv4" {
			t.Errorf("got block %v", b)
		}
	})
}

// cancelOnWrite cancels a context at its first write, once watch has
// printed a status.
type cancelOnWrite struct {
	syncBuffer
	cancel context.CancelFunc
}

func (c *cancelOnWrite) Write(p []byte) (int, error) {
	defer c.cancel()
	return c.syncBuffer.Write(p)
}

// TestWatchAgainstAServer runs apiv4 watch against a stand-in server: a
// base URL ending in /v4 names the same server, --filter goes on the
// stream as on the list, and a label with an escape sequence prints
// escaped.
func TestWatchAgainstAServer(t *testing.T) {
	var mu sync.Mutex
	var requests []string // path and X-Filter of each request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests = append(requests, r.URL.Path+" "+r.Header.Get("X-Filter"))
		mu.Unlock()
		switch r.URL.Path {
		case "/v4/account/events/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprint(w, "id: 1\n\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		case "/v4/account/events":
			fmt.Fprint(w, `{"results":1,"data":[{"id":7,"action":"linode_boot","status":"failed",`+
				`"entity":{"label":"web\u001b]0;pwned\u0007"}}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOnWrite{cancel: cancel}
	filter := `{"entity.type":"linode"}`
	args := []string{"watch", "--url", srv.URL + "/v4/", "--token", "t", "--filter", filter}
	if err := run(ctx, args, noEnv, out, &bytes.Buffer{}); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if want := `1 unseen · linode_boot failed web\x1b]0;pwned\x07 #7` + "\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 || requests[0] != "/v4/account/events/stream "+filter {
		t.Errorf("requests = %q, want the stream first, with the filter", requests)
	}
}

// TestWatchStopsOnNotFound checks that a wrong --url ends watch with an
// error saying so, instead of retrying for ever.
func TestWatchStopsOnNotFound(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	// The deadline only bounds a watch that would retry for ever.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := run(ctx, []string{"watch", "--url", srv.URL + "/api", "--token", "t"}, noEnv,
		&bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "GET /api/v4/account/events/stream: 404") ||
		!strings.Contains(err.Error(), "is --url the server's base URL") {
		t.Errorf("err = %v, want the 404 and a hint about --url", err)
	}
}

// TestShowEscapesI3bar checks that the i3bar block's text carries no
// control character, not even DEL or C1 ones that JSON leaves raw.
func TestShowEscapesI3bar(t *testing.T) {
	e := &watchEvent{ID: 1, Action: "linode_boot", Status: "finished"}
	e.Entity = &struct {
		Label string `json:"label"`
	}{"a\x7fb\u009bc\x1bd"}
	var out bytes.Buffer
	w := &watcher{cfg: watchConfig{Format: "i3bar"}, out: &out}
	w.show(1, e)
	var blocks []map[string]any
	if err := json.Unmarshal(out.Bytes(), &blocks); err != nil {
		t.Fatal(err)
	}
	if got, want := blocks[0]["full_text"], `apiv4: 1 unseen · linode_boot finished a\x7fb\u009bc\x1bd #1`; got != want {
		t.Errorf("full_text = %q, want %q", got, want)
	}
}
