package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"
	"github.com/tetratelabs/wazero"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/fuel"
)

func newExtCmd() *cobra.Command {
	ext := &cobra.Command{
		Use:   "ext",
		Short: "Inspect, validate and annotate Wasm extensions; register them with a node",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	ext.AddCommand(newExtInspectCmd(), newExtValidateCmd(), newExtAnnotateCmd(),
		newExtRegisterCmd(), newExtUpdateCmd(), newExtUnregisterCmd(), newExtListCmd())
	return ext
}

// extReport is what `creto ext inspect` prints.
type extReport struct {
	File       string        `json:"file"`
	Size       int           `json:"size"`
	SHA256     string        `json:"sha256"`
	ABIVersion int           `json:"abi_version"` // 0 when the marker is missing
	Manifest   *abi.Manifest `json:"manifest,omitempty"`
	// ManifestError says why the manifest is missing or invalid.
	ManifestError string   `json:"manifest_error,omitempty"`
	Imports       []string `json:"imports"`
	Exports       []string `json:"exports"`
}

func newExtInspectCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "inspect FILE.wasm",
		Short: "Show a module's ABI version, manifest, imports and exports (JSON)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := readModule(args[0])
			if err != nil {
				return err
			}
			// The instrumenter's checks come first: wazero sizes some
			// allocations from counts in the binary, so a tiny hostile
			// module could otherwise make the compiler allocate gigabytes.
			if _, err := fuel.Instrument(module); err != nil {
				return fmt.Errorf("%s: not a usable WebAssembly module: %v", args[0], err)
			}
			rt := wazero.NewRuntime(cmd.Context())
			defer rt.Close(cmd.Context())
			compiled, err := rt.CompileModule(cmd.Context(), module)
			if err != nil {
				return fmt.Errorf("%s: not a usable WebAssembly module: %v", args[0], err)
			}
			sum := sha256.Sum256(module)
			r := extReport{File: args[0], Size: len(module), SHA256: hex.EncodeToString(sum[:]), Imports: []string{}, Exports: []string{}}
			for _, f := range compiled.ImportedFunctions() {
				mod, name, _ := f.Import()
				r.Imports = append(r.Imports, mod+"."+name)
			}
			for name := range compiled.ExportedFunctions() {
				r.Exports = append(r.Exports, name)
				if name == abi.ExportMarker {
					r.ABIVersion = 1
				}
			}
			slices.Sort(r.Exports)
			if m, err := abi.ReadManifest(module); err != nil {
				r.ManifestError = err.Error()
			} else {
				r.Manifest = &m
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(r)
		},
	}
}

func newExtValidateCmd() *cobra.Command {
	var grants []string
	var configFile string
	cmd := &cobra.Command{
		Use:   "validate FILE.wasm",
		Short: "Register a module in a scratch engine: exit 0 if it would be accepted",
		Long: `validate does everything registration does — manifest, ABI version,
imports against the granted capabilities, start-up, arena, creto_init with
the configuration — in a scratch engine, and reports the first problem.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := readModule(args[0])
			if err != nil {
				return err
			}
			var config []byte
			if configFile != "" {
				if config, err = os.ReadFile(configFile); err != nil {
					return err
				}
			}
			e := engine.New(engine.WithHostModules(scratchHosts()...))
			defer e.Close()
			info, err := e.RegisterExtension(cmd.Context(), module, engine.ExtensionConfig{Config: config, Grants: grants})
			if err != nil {
				return fmt.Errorf("%s: %v", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: OK: extension %q (ABI v1, priority %d, on_error %s, imports %v)\n",
				args[0], info.Name, info.Priority, info.OnError, info.Imports)
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&grants, "grant", nil, "capabilities to grant (state, time, nhi, prefilter, vault, vault-reveal, audit, storage, consensus); repeat or comma-separate")
	cmd.Flags().StringVar(&configFile, "config", "", "configuration file handed to creto_init")
	return cmd
}

// scratchHosts are host modules for validation: real functions over
// throwaway state. The NHI, vault, audit, storage and consensus modules have no service
// behind them, so a guest's calls answer "unavailable" — enough to check
// its imports link.
func scratchHosts() []engine.HostModule {
	return []engine.HostModule{hosts.State{Store: hosts.NewMemoryState()}, hosts.Clock{}, hosts.NHI{}, hosts.Vault{}, hosts.VaultReveal{},
		hosts.Audit{}, hosts.Storage{}, hosts.Consensus{}}
}

func newExtAnnotateCmd() *cobra.Command {
	var manifestFile, out string
	cmd := &cobra.Command{
		Use:   "annotate FILE.wasm --manifest MANIFEST.json [-o OUT.wasm]",
		Short: "Write a manifest into a module built by any toolchain",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, err := readModule(args[0])
			if err != nil {
				return err
			}
			text, err := os.ReadFile(manifestFile)
			if err != nil {
				return err
			}
			m, err := abi.ParseManifest(text)
			if err != nil {
				return fmt.Errorf("%s: %v", manifestFile, err)
			}
			annotated, err := abi.WriteManifest(module, m)
			if err != nil {
				return fmt.Errorf("%s: %v", args[0], err)
			}
			if out == "" {
				out = args[0]
			}
			return os.WriteFile(out, annotated, 0o644)
		},
	}
	cmd.Flags().StringVar(&manifestFile, "manifest", "", "manifest JSON (abi/SPEC.md §2)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "where to write the module (default: in place)")
	_ = cmd.MarkFlagRequired("manifest")
	return cmd
}

// readModule reads a module, refusing files larger than any extension may
// be before reading them whole.
func readModule(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Size() > engine.MaxModuleSize {
		return nil, fmt.Errorf("%s: %d bytes, larger than the %d an extension may be", path, info.Size(), engine.MaxModuleSize)
	}
	return os.ReadFile(path)
}
