package wire_test

import (
	"fmt"

	"github.com/creto-systems/creto/internal/wire"
)

// A format writes its fields in order and reads them back in the same
// order, checking once at the end.
func Example() {
	var e wire.Encoder
	e.U8(1)           // version
	e.I64(1700000000) // created at
	e.Str8("mailer")  // agent id
	e.Bool(true)      // single use
	fmt.Printf("% x\n", []byte(e))

	d := wire.NewDecoder(e)
	if v := d.U8(); v != 1 {
		d.Fail("version %d", v)
	}
	created, agent, single := d.I64(), d.Str8(128), d.Bool()
	if err := d.Finish(); err != nil {
		fmt.Println("malformed:", err)
		return
	}
	fmt.Println(created, agent, single)

	d = wire.NewDecoder(e[:5])
	d.U8()
	d.I64()
	fmt.Println("cut short:", d.Finish())
	// Output:
	// 01 00 00 00 00 65 53 f1 00 06 6d 61 69 6c 65 72 01
	// 1700000000 mailer true
	// cut short: truncated: need 8 bytes, have 4
}
