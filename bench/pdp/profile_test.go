package pdp

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/creto-systems/creto/node"
)

// Profiling Creto's side. With PDP_CPUPROFILE_DIR set, the Creto
// configurations run this test binary instead of the creto binary: it
// serves the same node, configured from the same environment variables
// as `creto serve` reads, under the CPU profiler, and writes
// <dir>/<configuration>.cpu.pprof when stopped. The product has no
// profiling endpoint; this is a test-only build.
const (
	profileDirEnv   = "PDP_CPUPROFILE_DIR"
	profileServeEnv = "PDP_PROFILE_SERVE" // set on the child: where its profile goes
)

// profileServe runs the node when this process is such a child, and
// reports whether it was.
func profileServe() bool {
	path := os.Getenv(profileServeEnv)
	if path == "" {
		return false
	}
	if err := serveProfiled(path); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	return true
}

func serveProfiled(path string) error {
	cfg, err := node.LoadConfig("", os.Environ())
	if err != nil {
		return err
	}
	log, err := node.NewLogger(cfg.Log, os.Stderr)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	n, err := node.Open(ctx, cfg, log)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		n.Close()
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		n.Close()
		return err
	}
	defer pprof.StopCPUProfile()
	return n.Run(ctx)
}
