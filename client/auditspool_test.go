package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	"github.com/creto-systems/creto/node"
	"github.com/creto-systems/creto/services/consensus"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// spoolBase is the test events' time: in the past, as a spool's are.
var spoolBase = time.Now().Add(-time.Hour)

func spoolEvent(i int) *pending {
	rec := auditRecordProto(AuditRecord{What: fmt.Sprint("e", i), Outcome: OutcomeSuccess, Source: "platform",
		Timestamp: spoolBase.Add(time.Duration(i))})
	rec.Context = map[string]string{eventIDKey: newID()}
	return newPending(uint64(i), rec, true)
}

// What a spool holds across a restart: the events not settled, in order,
// renumbered from 0, and nothing of a torn or damaged tail.
func TestSpoolFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.spool")
	s, left, err := openSpool(path, quiet)
	if err != nil || len(left) != 0 {
		t.Fatalf("a new spool: %v %v", left, err)
	}
	var evs []*pending
	for i := range 6 {
		evs = append(evs, spoolEvent(i))
		if err := s.add(evs[i]); err != nil {
			t.Fatal(err)
		}
	}
	s.settle(2) // e0 and e1 are in the log
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
	s, left, err = openSpool(path, quiet)
	if err != nil || len(left) != 4 {
		t.Fatalf("reopened: %d events, %v", len(left), err)
	}
	for i, p := range left {
		if p.seq != uint64(i) || !proto.Equal(p.rec, evs[i+2].rec) || !p.critical {
			t.Fatalf("event %d: %+v", i, p)
		}
	}
	// Everything settled: the file is emptied.
	s.settle(4)
	eventually(t, "the spool emptied", func() bool { fi, err := os.Stat(path); return err == nil && fi.Size() == 0 })
	s.close()

	// A torn frame at the end, or a damaged one, ends what is read.
	var buf []byte
	for i := range 3 {
		body, _ := proto.Marshal(spoolEvent(i).rec)
		buf = appendSpoolFrame(buf, frameEvent, uint64(i), body)
	}
	whole := len(buf)
	body, _ := proto.Marshal(spoolEvent(3).rec)
	buf = appendSpoolFrame(buf, frameEvent, 3, body)
	for name, file := range map[string][]byte{
		"torn":      buf[:len(buf)-5],
		"bad CRC":   append(append([]byte(nil), buf[:whole]...), flip(buf[whole:], 12)...),
		"bad size":  append(append([]byte(nil), buf[:whole]...), 0xff, 0xff, 0xff, 0xff),
		"bad frame": append(append([]byte(nil), buf[:whole]...), appendSpoolFrame(nil, 9, 3, nil)...),
	} {
		if err := os.WriteFile(path, file, 0o600); err != nil {
			t.Fatal(err)
		}
		s, left, err := openSpool(path, quiet)
		if err != nil || len(left) != 3 {
			t.Fatalf("%s: %d events, %v", name, len(left), err)
		}
		s.close()
		if fi, _ := os.Stat(path); fi.Size() != int64(whole) {
			t.Fatalf("%s: the file was not cut back to its whole frames: %d, want %d", name, fi.Size(), whole)
		}
	}
	if _, _, err := openSpool(filepath.Join(t.TempDir(), "missing", "audit.spool"), quiet); err == nil {
		t.Fatal("a spool in a missing directory")
	}
}

func flip(b []byte, at int) []byte {
	out := append([]byte(nil), b...)
	out[at] ^= 1
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A process that crashed after its events reached the log but before it
// emptied its spool leaves them in the spool: the next one finds them in
// the log and sends only the others, so each is logged once.
func TestSpoolRecoveryFindsDeliveredEvents(t *testing.T) {
	ctx := context.Background()
	n, err := node.Open(ctx, node.Config{
		Server:    node.ServerConfig{DataDir: t.TempDir(), GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Plaintext: true},
		Consensus: consensus.Config{BindAddress: "127.0.0.1:0", HeartbeatTimeout: 50 * time.Millisecond, ElectionTimeout: 50 * time.Millisecond, LeaderLeaseTimeout: 25 * time.Millisecond},
	}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Shutdown(ctx)
	cfg := AuditConfig{ServiceConfig: ServiceConfig{Transport: Transport{Endpoint: n.GRPCAddr().String(), TLSEnabled: new(bool)}, TimeoutMS: 5000},
		SpoolPath: filepath.Join(t.TempDir(), "audit.spool")}

	// The previous process: seven critical events spooled, the first four
	// delivered, in two batches.
	var evs []*pending
	var file []byte
	for i := range 7 {
		evs = append(evs, spoolEvent(i))
		body, _ := proto.Marshal(evs[i].rec)
		file = appendSpoolFrame(file, frameEvent, uint64(i), body)
	}
	if err := os.WriteFile(cfg.SpoolPath, file, 0o600); err != nil {
		t.Fatal(err)
	}
	direct, err := NewAuditClient(AuditConfig{ServiceConfig: cfg.ServiceConfig}, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	for _, batch := range [][]*pending{evs[:3], evs[3:4]} {
		in := &auditv1.LogBatchRequest{}
		for _, p := range batch {
			in.Records = append(in.Records, p.rec)
		}
		if _, err := direct.logBatch(ctx, in); err != nil {
			t.Fatal(err)
		}
	}

	c, err := NewAuditClient(cfg, WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := c.LoggerStats(); s.Relogged != 4 || s.Delivered != 3 || s.Waiting != 0 {
		t.Fatalf("stats %+v", s)
	}
	page, err := c.Query(ctx, AuditQuery{Source: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 7 {
		t.Fatalf("%d records, want each of the 7 once", len(page.Records))
	}
	for i, r := range page.Records {
		if r.What != fmt.Sprint("e", i) || r.Context[eventIDKey] != evs[i].rec.GetContext()[eventIDKey] {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	eventually(t, "the spool emptied", func() bool { fi, err := os.Stat(cfg.SpoolPath); return err == nil && fi.Size() == 0 })
}
