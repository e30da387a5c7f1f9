package audit

import (
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// The request and response types mirror the seed's AuditService messages
// (§9.2), so the gRPC adapter maps each field 1:1.

// LogRequest asks to append one record (seed LogRequest).
type LogRequest struct {
	Record Record
}

// LogResponse says where the record went.
type LogResponse struct {
	Index    uint64
	LoggedAt time.Time
}

// LogBatchRequest asks to append records atomically (seed
// LogBatchRequest): all of them, at consecutive indexes, or none.
type LogBatchRequest struct {
	Records []Record
}

// LogBatchResponse says where the records went: FirstIndex up to
// FirstIndex+Count-1, in request order.
type LogBatchResponse struct {
	FirstIndex uint64
	Count      int
	LoggedAt   time.Time
}

// QueryRequest filters the log (seed QueryRequest). Empty fields do not
// filter. Results come in log order.
type QueryRequest struct {
	Who      string
	What     string
	Resource string
	Source   string
	// Outcomes keeps records with any of these outcomes.
	Outcomes []Outcome
	// Since and Until bound Timestamp: Since <= Timestamp < Until.
	Since, Until time.Time
	// Limit caps the page; 0 means Config.QueryDefaultLimit.
	Limit int
	// Cursor continues a previous query: its NextCursor.
	Cursor string
}

// QueryResponse is one page of results.
type QueryResponse struct {
	Records []Record
	// NextCursor continues the query; empty when the log holds no more
	// matches. A page can be shorter than the limit while more remain
	// (Config.QueryMaxScan), so continue until NextCursor is empty.
	NextCursor string
}

// ProofKind says which proof a MerkleProof is.
type ProofKind uint8

// Proof kinds.
const (
	// Inclusion proves a record is in the tree of a checkpoint.
	Inclusion ProofKind = iota + 1
	// Consistency proves a tree of OldSize is a prefix of one of TreeSize.
	Consistency
)

// String returns "inclusion" or "consistency".
func (k ProofKind) String() string {
	switch k {
	case Inclusion:
		return "inclusion"
	case Consistency:
		return "consistency"
	}
	return "proof(?)"
}

// GetProofRequest asks for an inclusion proof of the record at Index, or
// a consistency proof from OldSize to TreeSize (seed GetProofRequest).
type GetProofRequest struct {
	Kind ProofKind
	// Index is the record an inclusion proof is for.
	Index uint64
	// WithLeaf asks for the record's leaf encoding with an inclusion
	// proof. The proof alone is hashes and needs no access; the leaf is
	// the record, and needs read access to it.
	WithLeaf bool
	// OldSize is the smaller tree of a consistency proof (1..TreeSize).
	OldSize uint64
	// TreeSize is the checkpoint the proof leads to; it must be the size
	// of a checkpoint the log signed. 0 means the latest, which for an
	// inclusion proof is first brought up to cover Index.
	TreeSize uint64
}

// MerkleProof is an RFC 6962 proof with the signed checkpoint it leads to
// (seed MerkleProof). Hashes are those of golang.org/x/mod/sumdb/tlog's
// RecordProof and TreeProof, which are RFC 6962's audit paths and
// consistency proofs; any RFC 6962 verifier checks them.
type MerkleProof struct {
	Kind     ProofKind
	Index    uint64 // inclusion
	OldSize  uint64 // consistency
	TreeSize uint64
	Hashes   []tlog.Hash
	// Leaf is the record's leaf encoding, the bytes whose leaf hash the
	// proof starts from: set for an inclusion proof asked WithLeaf.
	Leaf []byte
	// Checkpoint is the signed checkpoint of TreeSize.
	Checkpoint []byte
}

// VerifyRequest asks to check a proof (seed VerifyRequest). For an
// inclusion proof, the record is Leaf if set, else Record encoded (its
// Index and LoggedAt as the log set them), else Proof.Leaf. For a
// consistency proof, OldCheckpoint is the signed checkpoint of
// Proof.OldSize. Checkpoint, if set, replaces Proof.Checkpoint, so a
// client can check against a checkpoint it obtained elsewhere.
type VerifyRequest struct {
	Record        *Record
	Leaf          []byte
	Proof         MerkleProof
	Checkpoint    []byte
	OldCheckpoint []byte
}

// VerifyResponse names the checkpoint the proof was verified against. A
// proof that does not verify is an error matching ErrVerification.
type VerifyResponse struct {
	Checkpoint Checkpoint
}
