package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"google.golang.org/grpc/status"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
)

// A sandbox stores a checkpoint over gRPC and hands out a presigned URL;
// anyone holding the URL fetches the object from the node's HTTP listener
// without credentials, and another agent's direct read is refused.
func Example_storeAndPresignedURL() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "creto-node")
	defer os.RemoveAll(dir)
	n, err := node.Open(ctx, node.Config{Server: node.ServerConfig{DataDir: dir, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0"}},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		log.Fatal(err)
	}
	if err := n.Start(); err != nil {
		log.Fatal(err)
	}
	defer n.Shutdown(ctx)

	operator := dial(n, dir, pki.DefaultOperator, "")
	defer operator.Close()
	ids := nhiv1.NewNhiServiceClient(operator)
	conns := map[string]storagev1.StorageServiceClient{}
	for _, id := range []string{"sandbox-7", "stranger"} {
		if _, err := ids.RegisterAgent(ctx, &nhiv1.RegisterAgentRequest{Agent: &nhiv1.AgentIdentity{
			Id: id, Type: nhiv1.AgentType_AGENT_TYPE_AUTONOMOUS, OwnerId: "alice"}}); err != nil {
			log.Fatal(err)
		}
		issued, err := ids.IssueToken(ctx, &nhiv1.IssueTokenRequest{AgentId: id})
		if err != nil {
			log.Fatal(err)
		}
		conn := dial(n, dir, "", issued.GetToken())
		defer conn.Close()
		conns[id] = storagev1.NewStorageServiceClient(conn)
	}

	ref := &storagev1.StorageRef{Bucket: "checkpoints", Key: "run-1/step-3"}
	stored, err := conns["sandbox-7"].Store(ctx, &storagev1.StoreRequest{Reference: ref, Data: []byte(`{"step":3}`),
		Classification: storagev1.Classification_CLASSIFICATION_SANDBOX_STATE, ContentType: "application/json"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("stored", stored.GetMetadata().GetSizeBytes(), "bytes owned by", stored.GetMetadata().GetOwner().GetId())

	u, err := conns["sandbox-7"].GeneratePresignedUrl(ctx, &storagev1.GeneratePresignedUrlRequest{Reference: ref,
		Operation: storagev1.PresignedOperation_PRESIGNED_OPERATION_GET})
	if err != nil {
		log.Fatal(err)
	}
	// What `curl --cacert creto-data/tls/ca.crt "$URL"` does.
	ca, _ := os.ReadFile(filepath.Join(dir, "tls", pki.CACert))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	web := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	resp, err := web.Get(u.GetUrl())
	if err != nil {
		log.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Printf("%s with the URL: %s %s\n", u.GetMethod(), resp.Status, body)

	_, err = conns["stranger"].Retrieve(ctx, &storagev1.RetrieveRequest{Reference: ref})
	fmt.Println("stranger:", status.Code(err), reasonOf(err))
	// Output:
	// stored 10 bytes owned by sandbox-7
	// GET with the URL: 200 OK {"step":3}
	// stranger: PermissionDenied ACCESS_DENIED
}
