package fuel

import "github.com/tetratelabs/wazero/api"

// Meter is an instance's fuel global, looked up once. Setting fuel through
// it before every call is a single store: no export lookup, no allocation.
// A Meter belongs to one instance and, like the instance, to one goroutine
// at a time. The zero Meter is not usable; get one from NewMeter.
type Meter struct {
	g api.MutableGlobal
}

// NewMeter finds the fuel global of an instance of an instrumented module.
// It fails with ErrNotInstrumented if m exports no mutable i64 GlobalName.
func NewMeter(m api.Module) (Meter, error) {
	g, ok := m.ExportedGlobal(GlobalName).(api.MutableGlobal)
	if !ok || g.Type() != api.ValueTypeI64 {
		return Meter{}, ErrNotInstrumented
	}
	return Meter{g: g}, nil
}

// Set gives the next calls fuel units to spend. Negative values are stored
// as zero, which keeps the global from ever wrapping around.
func (m Meter) Set(fuel int64) {
	m.g.Set(uint64(max(fuel, 0)))
}

// Remaining is what is left of the fuel. After a call ran out it is -1:
// the failing charge stores that before trapping, and since Set never
// stores a negative value, a negative global means exactly that.
func (m Meter) Remaining() int64 {
	return int64(m.g.Get())
}

// Exhausted reports whether a call ran out of fuel since the last Set: it
// tells a fuel trap from the guest's own unreachable, a bad memory access
// and the like, which all surface as the same kind of error.
func (m Meter) Exhausted() bool {
	return m.Remaining() < 0
}

// Set is NewMeter(m) followed by Set, for callers that do not keep a Meter.
func Set(m api.Module, fuel int64) error {
	meter, err := NewMeter(m)
	if err != nil {
		return err
	}
	meter.Set(fuel)
	return nil
}

// Remaining is NewMeter(m) followed by Remaining.
func Remaining(m api.Module) (int64, error) {
	meter, err := NewMeter(m)
	if err != nil {
		return 0, err
	}
	return meter.Remaining(), nil
}
