package storage

import (
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
)

// The adapter converts classifications by number; the numbers must name
// the same classifications on both sides.
func TestWireClassificationsAreTheServices(t *testing.T) {
	for n := range storagev1.Classification_name {
		p := storagev1.Classification(n)
		c, err := classFrom(p)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if want := "CLASSIFICATION_" + strings.ToUpper(c.String()); p.String() != want {
			t.Errorf("wire %v is the service's %v", p, c)
		}
	}
	for _, p := range []storagev1.Classification{-1, storagev1.Classification(len(storagev1.Classification_name))} {
		if _, err := classFrom(p); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("classification %d converted: %v", p, err)
		}
	}
}

// Seed §3.2: a ttl of 0 means no expiry, and the node's default applies
// only to a ttl the request leaves out.
func TestWireTTLs(t *testing.T) {
	for _, c := range []struct {
		in   *durationpb.Duration
		want time.Duration
	}{
		{nil, 0},
		{durationpb.New(0), NoExpiry},
		{durationpb.New(time.Hour), time.Hour},
	} {
		if got, err := ttlFrom(c.in); err != nil || got != c.want {
			t.Errorf("ttl %v: %v %v, want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []*durationpb.Duration{durationpb.New(-time.Second), {Seconds: 1, Nanos: -1}, {Seconds: 1e12}} {
		if _, err := ttlFrom(bad); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("ttl %v: %v", bad, err)
		}
	}
}

func TestWireUpdateMask(t *testing.T) {
	mask := func(paths ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: paths} }
	req, err := updateFrom(&storagev1.UpdateMetadataRequest{UpdateMask: mask("custom_metadata", "content_type", "ttl", "classification"),
		Classification: storagev1.Classification_CLASSIFICATION_ARTIFACT})
	if err != nil {
		t.Fatal(err)
	}
	// Named and empty: cleared, not left alone.
	if req.Metadata == nil || len(req.Metadata) != 0 || req.ContentType == nil || *req.ContentType != "" ||
		req.TTL != NoExpiry || req.Classification != Artifact {
		t.Fatalf("%+v", req)
	}
	// Not named: unchanged, whatever the request holds.
	req, err = updateFrom(&storagev1.UpdateMetadataRequest{UpdateMask: mask("ttl"), Ttl: durationpb.New(time.Hour),
		CustomMetadata: map[string]string{"a": "b"}, ContentType: "text/plain"})
	if err != nil || req.TTL != time.Hour || req.Metadata != nil || req.ContentType != nil || req.Classification != ClassificationUnspecified {
		t.Fatalf("%+v %v", req, err)
	}
	for name, in := range map[string]*storagev1.UpdateMetadataRequest{
		"no mask":                   {},
		"unknown path":              {UpdateMask: mask("owner")},
		"unspecified class":         {UpdateMask: mask("classification")},
		"out-of-range class":        {UpdateMask: mask("classification"), Classification: 99},
		"negative ttl":              {UpdateMask: mask("ttl"), Ttl: durationpb.New(-time.Minute)},
		"a path ObjectMetadata has": {UpdateMask: mask("expires_at")},
	} {
		if _, err := updateFrom(in); !errors.Is(err, ErrInvalidArgument) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
