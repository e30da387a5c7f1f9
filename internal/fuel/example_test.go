package fuel_test

import (
	"context"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"

	"github.com/creto-systems/creto/internal/fuel"
)

// A host instruments a module once, at load time, and sets the fuel of an
// instance before each call. A call that runs out traps; the instance stays
// usable.
func Example() {
	ctx := context.Background()
	module, err := os.ReadFile("testdata/compute.wasm")
	if err != nil {
		panic(err)
	}
	metered, err := fuel.Instrument(module)
	if err != nil {
		panic(err)
	}
	rt := wazero.NewRuntime(ctx)
	defer rt.Close(ctx)
	inst, err := rt.InstantiateWithConfig(ctx, metered, wazero.NewModuleConfig())
	if err != nil {
		panic(err)
	}
	meter, err := fuel.NewMeter(inst) // once per instance
	if err != nil {
		panic(err)
	}
	fac := inst.ExportedFunction("fac")

	// fac(10) pays 7 units on entry, then 14 for each of 10 loop iterations.
	meter.Set(1000)
	res, err := fac.Call(ctx, 10)
	fmt.Println(res, err, "fuel used:", 1000-meter.Remaining())

	meter.Set(100)
	_, err = fac.Call(ctx, 20)
	fmt.Println("out of fuel:", err != nil && meter.Exhausted())

	meter.Set(1000)
	res, err = fac.Call(ctx, 5)
	fmt.Println(res, err)
	// Output:
	// [3628800] <nil> fuel used: 147
	// out of fuel: true
	// [120] <nil>
}
