package frames

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"
)

func TestRoundTripAndTears(t *testing.T) {
	var buf []byte
	buf = Append(buf, []byte("one"))
	buf = Append(buf, []byte("tw"), []byte("o"), nil)
	whole := len(buf)
	buf = Append(buf, []byte("three"))

	read := func(b []byte) (got []string, err error) {
		r := bufio.NewReader(bytes.NewReader(b))
		var off int64
		for {
			p, n, err := Read(r, 1, 16)
			if err != nil {
				if off > int64(len(b)) {
					t.Fatalf("sizes add up past the input: %d", off)
				}
				return got, err
			}
			off += n
			got = append(got, string(p))
		}
	}
	if got, err := read(buf); err != io.EOF || strings.Join(got, ",") != "one,two,three" {
		t.Fatalf("whole: %v %v", got, err)
	}
	// Every tear inside the last frame reads back the first two, then fails.
	for cut := whole + 1; cut < len(buf); cut++ {
		if got, err := read(buf[:cut]); !errors.Is(err, ErrDamaged) || strings.Join(got, ",") != "one,two" {
			t.Fatalf("cut at %d: %v %v", cut, got, err)
		}
	}
	// A flipped bit anywhere in a frame fails its checksum or its length.
	for i := whole; i < len(buf); i++ {
		bad := bytes.Clone(buf)
		bad[i] ^= 0x10
		if got, err := read(bad); !errors.Is(err, ErrDamaged) || len(got) != 2 {
			t.Fatalf("bit flipped at %d: %v %v", i, got, err)
		}
	}
	// The reader's own failure is not damage: nothing may be cut for it.
	failing := bufio.NewReader(io.MultiReader(bytes.NewReader(buf[:whole+3]), iotest.ErrReader(syscall.EIO)))
	for range 2 {
		if _, _, err := Read(failing, 1, 16); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := Read(failing, 1, 16); !errors.Is(err, syscall.EIO) || errors.Is(err, ErrDamaged) {
		t.Fatalf("an I/O error: %v", err)
	}
	// Payloads outside the bounds are refused.
	if _, _, err := Read(bufio.NewReader(bytes.NewReader(Append(nil, make([]byte, 17)))), 1, 16); err == nil {
		t.Fatal("an oversize frame was read")
	}
	if _, _, err := Read(bufio.NewReader(bytes.NewReader(Append(nil))), 1, 16); err == nil {
		t.Fatal("an undersize frame was read")
	}
}

// WriteLoop flushes on a wake, retries a failed flush by itself, and
// flushes once more when stopped.
func TestWriteLoop(t *testing.T) {
	wake, stop, done := make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	calls := make(chan int, 10)
	n := 0
	go func() {
		defer close(done)
		WriteLoop(wake, stop, func() bool {
			n++
			calls <- n
			return n != 1 // the first flush fails
		})
	}()
	wake <- struct{}{}
	for want := 1; want <= 2; want++ { // the wake, then the retry unprompted
		select {
		case got := <-calls:
			if got != want {
				t.Fatalf("flush %d, want %d", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("flush %d never came", want)
		}
	}
	close(stop)
	<-done
	if got := <-calls; got != 3 {
		t.Fatalf("the final flush was %d, want 3", got)
	}
	select {
	case got := <-calls:
		t.Fatalf("a flush after stop: %d", got)
	default:
	}
}
