package vault

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// TestUseCountsSurviveKill runs fetchers in a child process, kills it with
// SIGKILL mid-flight, and checks on the store it left behind that every
// value the child received was counted, and that the uses counted plus
// those still available never exceed max_uses.
func TestUseCountsSurviveKill(t *testing.T) {
	if os.Getenv("CRETO_VAULT_CHILD") == "1" {
		childFetcher()
		return
	}
	const maxUses = 60
	f, x, _ := delegationFixture(t, Config{})
	// The child runs on the real clock.
	f.clock.mu.Lock()
	f.clock.t = time.Now()
	f.clock.mu.Unlock()
	d := f.delegate(CreateDelegationRequest{Delegatee: "b", Secrets: []SecretRef{x}, Restrictions: DelegationRestrictions{MaxUses: maxUses}})
	f.close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestUseCountsSurviveKill$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CRETO_VAULT_CHILD=1", "CRETO_VAULT_DIR="+f.dir,
		"CRETO_VAULT_SHARES="+f.shares[0]+","+f.shares[1], "CRETO_VAULT_DELEGATION="+d.ID)
	out, err := cmd.StdoutPipe()
	must(t, err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	must(t, cmd.Start())
	delivered := 0
	lines := bufio.NewScanner(out)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "delivered ") {
			delivered++
			if delivered == 8 {
				must(t, cmd.Process.Kill())
			}
		}
	}
	waitErr := cmd.Wait()
	if delivered < 8 {
		t.Fatalf("the child delivered %d values before exiting (%v): %s", delivered, waitErr, stderr.String())
	}

	f.open()
	f.unseal()
	got, err := f.svc.GetDelegation(bg, "b", d.ID)
	must(t, err)
	if int(got.Uses) < delivered {
		t.Fatalf("the child received %d values but %d uses were recorded", delivered, got.Uses)
	}
	more := 0
	for {
		_, err := f.fetch("b", GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []SecretRef{x}, DelegationID: d.ID})
		if errors.Is(err, ErrDelegationExhausted) {
			break
		}
		must(t, err)
		more++
	}
	if int(got.Uses)+more != maxUses {
		t.Fatalf("%d uses recorded at the kill + %d after = %d, max_uses %d", got.Uses, more, int(got.Uses)+more, maxUses)
	}
	t.Logf("killed after %d deliveries; %d uses were durable; %d left", delivered, got.Uses, more)
}

// childFetcher fetches from four goroutines until killed or exhausted,
// printing a line for every value received.
func childFetcher() {
	store, err := kv.Open(os.Getenv("CRETO_VAULT_DIR"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	svc, err := Open(context.Background(), store, Config{})
	if err == nil {
		_, err = svc.SubmitUnsealShares(context.Background(), strings.Split(os.Getenv("CRETO_VAULT_SHARES"), ",")...)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	x := ref("agents/a/api", "X")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				resp, err := svc.GetDelegatedSecrets(context.Background(), "b", GetDelegatedSecretsRequest{
					SandboxID: "sb-child", Refs: []SecretRef{x}, DelegationID: os.Getenv("CRETO_VAULT_DELEGATION")})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					return
				}
				resp.Destroy()
				mu.Lock()
				fmt.Fprintln(os.Stdout, "delivered", time.Now().UnixNano())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}
