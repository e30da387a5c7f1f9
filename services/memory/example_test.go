package memory_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/memory"
)

// An agent records its reasoning, and an approver it has been granted to
// builds the oversight context for its pending action.
func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "memory-example")
	defer os.RemoveAll(dir)
	store, err := kv.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The approver may read the payments agent's memories; nobody else may.
	grants := memory.AuthorizerFunc(func(_ context.Context, caller, owner string, a memory.Access) error {
		if caller == "approver" && owner == "payments" && a == memory.AccessRead {
			return nil
		}
		return memory.ErrAccessDenied
	})
	svc, err := memory.Open(ctx, store, memory.Config{Authorizer: grants})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close()

	action := map[string]string{memory.MetadataActionID: "pay-42", memory.MetadataConfidence: "0.9"}
	_, err = svc.StoreBatch(ctx, "payments", []memory.StoreRequest{
		{Agent: "payments", Type: memory.Context, Content: "Vendor payments by wire transfer above 1000 EUR need approval"},
		{Agent: "payments", Type: memory.Observation, Content: "Acme sent invoice 42 for 4200 EUR"},
		{Agent: "payments", Type: memory.Reasoning, Content: "Invoice 42 matches PO-991, so I will pay Acme by wire transfer", Metadata: action},
	})
	if err != nil {
		log.Fatal(err)
	}

	res, _ := svc.Query(ctx, "payments", memory.Query{Agent: "payments", Text: "invoice from Acme"})
	for _, r := range res.Results {
		fmt.Printf("query: %.2f %s\n", r.Score, r.Memory.Content)
	}

	oc, _ := svc.OversightContext(ctx, "approver", memory.OversightRequest{
		Agent: "payments", Action: "wire transfer of 4200 EUR to Acme", ActionID: "pay-42",
	})
	fmt.Printf("reasoning: %s (confidence %.1f)\n", oc.Reasoning, oc.Confidence)
	for _, r := range oc.Memories {
		fmt.Printf("context: %s\n", r.Memory.Content)
	}

	_, err = svc.Query(ctx, "intruder", memory.Query{Agent: "payments", Text: "invoice"})
	fmt.Println(errors.Is(err, memory.ErrAccessDenied))
	// Output:
	// query: 0.35 Acme sent invoice 42 for 4200 EUR
	// query: 0.30 Invoice 42 matches PO-991, so I will pay Acme by wire transfer
	// reasoning: Invoice 42 matches PO-991, so I will pay Acme by wire transfer (confidence 0.9)
	// context: Invoice 42 matches PO-991, so I will pay Acme by wire transfer
	// context: Vendor payments by wire transfer above 1000 EUR need approval
	// true
}
