package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
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
