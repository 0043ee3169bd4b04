package invariant

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestParseChange(t *testing.T) {
	line := `table public.events: UPDATE: account_id[bigint]:1 id[bigint]:7 message[text]:'Booting ''web 1''' ` +
		`username[text]:null at[timestamp with time zone]:'2026-12-04 10:00:00+00' duration[double precision]:1.5`
	got, ok := parseChange(line)
	want := change{table: "events", op: "UPDATE", cols: map[string]string{
		"account_id": "1", "id": "7", "message": "Booting 'web 1'", "username": "",
		"at": "2026-12-04 10:00:00+00", "duration": "1.5",
	}}
	if !ok || !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	got, _ = parseChange(`table public.jobs: DELETE: account_id[bigint]:1 id[bigint]:5`)
	if got.op != "DELETE" || got.cols["id"] != "5" {
		t.Errorf("delete: got %+v", got)
	}
}

// script builds test_decoding lines, one transaction per call of tx.
type script struct{ lines []string }

func (s *script) tx(changes ...string) {
	s.lines = append(s.lines, "BEGIN")
	for _, c := range changes {
		s.lines = append(s.lines, "table public."+c)
	}
	s.lines = append(s.lines, "COMMIT")
}

func linodeRow(op string, id, pending int) string {
	return fmt.Sprintf("linodes: %s: account_id[bigint]:1 id[bigint]:%d label[text]:'l%d' jobs_pending[integer]:%d",
		op, id, id, pending)
}

func jobInsert(id, linode, event int, action string) string {
	return fmt.Sprintf("jobs: INSERT: account_id[bigint]:1 id[bigint]:%d linode_id[bigint]:%d event_id[bigint]:%d"+
		" action[text]:'%s' lease_owner[text]:null", id, linode, event, action)
}

func jobDelete(id int) string {
	return fmt.Sprintf("jobs: DELETE: account_id[bigint]:1 id[bigint]:%d", id)
}

func eventInsert(id, linode int, action string) string {
	return fmt.Sprintf("events: INSERT: account_id[bigint]:1 id[bigint]:%d action[text]:'%s' status[text]:'scheduled'"+
		" entity_id[bigint]:%d", id, action, linode)
}

func eventUpdate(id int, action, status string) string {
	return fmt.Sprintf("events: UPDATE: account_id[bigint]:1 id[bigint]:%d action[text]:'%s' status[text]:'%s'",
		id, action, status)
}

func seenRow(op string, seen int) string {
	return fmt.Sprintf("event_seen: %s: account_id[bigint]:1 user_id[bigint]:2 seen_id[bigint]:%d", op, seen)
}

// TestTimeline replays a made-up history that keeps every promise, then
// one history per broken promise, and checks what the Timeline reports.
func TestTimeline(t *testing.T) {
	var good script
	good.tx(linodeRow("INSERT", 10, 1), eventInsert(100, 10, "linode_create"), jobInsert(1, 10, 100, "linode_create"))
	good.tx(linodeRow("UPDATE", 10, 2), eventInsert(101, 10, "linode_boot"), jobInsert(2, 10, 101, "linode_boot"))
	good.tx(jobDelete(1), eventUpdate(100, "linode_create", "finished"), linodeRow("UPDATE", 10, 1))
	good.tx(jobDelete(2), eventUpdate(101, "linode_boot", "finished"), linodeRow("UPDATE", 10, 0))
	good.tx(linodeRow("UPDATE", 10, 1), eventInsert(102, 10, "linode_shutdown"), jobInsert(3, 10, 102, "linode_shutdown"))
	good.tx(seenRow("INSERT", 100))
	good.tx(seenRow("UPDATE", 102))

	tests := []struct {
		name  string
		more  func(s *script)
		kinds []string
	}{
		{"good", func(*script) {}, nil},
		{"second action while busy", func(s *script) {
			s.tx(linodeRow("UPDATE", 10, 2), eventInsert(103, 10, "linode_reboot"), jobInsert(4, 10, 103, "linode_reboot"))
		}, []string{KindBusy}},
		{"count off by one", func(s *script) {
			s.tx(jobDelete(3), eventUpdate(102, "linode_shutdown", "finished"), linodeRow("UPDATE", 10, 1))
		}, []string{KindPending}},
		{"job without event", func(s *script) {
			s.tx(jobDelete(3), eventUpdate(102, "linode_shutdown", "finished"), linodeRow("UPDATE", 10, 0))
			s.tx(linodeRow("UPDATE", 10, 1), jobInsert(4, 10, 103, "linode_reboot"))
		}, []string{KindOneEvent}},
		{"event without job", func(s *script) {
			s.tx(eventInsert(103, 10, "linode_boot"))
		}, []string{KindOneEvent}},
		{"seen backwards", func(s *script) { s.tx(seenRow("UPDATE", 101)) }, []string{KindMarks}},
		{"read mark removed", func(s *script) {
			s.tx("event_reads: DELETE: account_id[bigint]:1 user_id[bigint]:2 event_id[bigint]:100")
		}, []string{KindMarks}},
		{"ended event runs again", func(s *script) { s.tx(eventUpdate(100, "linode_create", "started")) },
			[]string{KindJobTwice}},
		{"removed while busy", func(s *script) {
			s.tx("linodes: DELETE: account_id[bigint]:1 id[bigint]:10")
		}, []string{KindPending}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{lines: append([]string(nil), good.lines...)}
			tt.more(s)
			tl := NewTimeline()
			for _, l := range s.lines {
				tl.Line(l)
			}
			var kinds []string
			for _, v := range tl.Violations() {
				kinds = append(kinds, v.Kind)
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("got violations %v, want kinds %v", tl.Violations(), tt.kinds)
			}
			if tl.commits != strings.Count(strings.Join(s.lines, "\n"), "COMMIT") {
				t.Errorf("counted %d commits", tl.commits)
			}
		})
	}
}

// TestStreamChecksEachCommitOnce reads a slot's lines as Poll does when
// the slot could not be moved after a read: the next read starts over at
// the same commits. Each commit must be checked once, so that the job
// queued at the end of the first read does not make the replayed create
// look like a second action on a busy Linode.
func TestStreamChecksEachCommitOnce(t *testing.T) {
	var s script
	s.tx(linodeRow("INSERT", 10, 1), eventInsert(100, 10, "linode_create"), jobInsert(1, 10, 100, "linode_create"))
	s.tx(jobDelete(1), eventUpdate(100, "linode_create", "finished"), linodeRow("UPDATE", 10, 0))
	s.tx(linodeRow("UPDATE", 10, 1), eventInsert(101, 10, "linode_reboot"), jobInsert(2, 10, 101, "linode_reboot"))
	firstRead := len(s.lines)
	s.tx(jobDelete(2), eventUpdate(101, "linode_reboot", "finished"), linodeRow("UPDATE", 10, 0))
	lines := make([]slotLine, len(s.lines))
	for i, data := range s.lines {
		lines[i] = slotLine{lsn: fmt.Sprintf("1/%X", 0xA0000000+16*i), data: data}
	}

	st := &Stream{tl: NewTimeline()}
	if got, want := st.apply(lines[:firstRead]), lines[firstRead-1].lsn; got != want {
		t.Errorf("first read: moves the slot to %q, want %q, its last commit", got, want)
	}
	if got, want := st.apply(lines), lines[len(lines)-1].lsn; got != want {
		t.Errorf("second read: moves the slot to %q, want %q", got, want)
	}
	if st.tl.commits != 4 || len(st.tl.Violations()) != 0 {
		t.Errorf("checked %d commits with violations %v; want the 4 commits once, none broken",
			st.tl.commits, st.tl.Violations())
	}
	if got := parseLSN("16/B374D848"); got != 0x16_B374D848 {
		t.Errorf("parseLSN(16/B374D848) = %#x", got)
	}
}
