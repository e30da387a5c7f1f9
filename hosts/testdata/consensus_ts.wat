;; Takes timestamps from creto:consensus/v1 (SPEC.md §6.9) and denies every
;; request with a reason that reports them: "r1=<code> r2=<code> r3=<code>
;; a=<hex> b=<hex> z=<hex>", where r1 and r2 are two calls with a 300-byte
;; buffer, a and b the records they wrote, r3 a call with a 1-byte buffer
;; and z the 4 bytes of that buffer (untouched: too small). The test
;; decodes the records, so the whole ABI path is exercised.
(module
  (import "creto:consensus/v1" "timestamp" (func $timestamp (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $pos (mut i32) (i32.const 0))
  (data (i32.const 16) "0123456789abcdef")
  (data (i32.const 64) "r1=")
  (data (i32.const 72) " r2=")
  (data (i32.const 80) " r3=")
  (data (i32.const 88) " a=")
  (data (i32.const 96) " b=")
  (data (i32.const 104) " z=")
  (data (i32.const 112) "consensus")
  (func (export "creto_abi_1"))
  ;; The arena: 4 KiB at 4096. Records at 8192 and 8704, the small buffer
  ;; at 9216, the reason built at 12288.
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))

  (func $put (param $src i32) (param $n i32)
    (memory.copy (global.get $pos) (local.get $src) (local.get $n))
    (global.set $pos (i32.add (global.get $pos) (local.get $n))))

  ;; $num appends v in decimal, with a minus sign when negative.
  (func $num (param $v i32)
    (local $p i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then
        (i32.store8 (global.get $pos) (i32.const 45))
        (global.set $pos (i32.add (global.get $pos) (i32.const 1)))
        (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    (local.set $p (i32.const 12000))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (call $put (local.get $p) (i32.sub (i32.const 12000) (local.get $p))))

  ;; $hex appends n bytes at src in hex (nothing when n is negative).
  (func $hex (param $src i32) (param $n i32)
    (local $i i32) (local $b i32)
    (block $done
      (loop $byte
        (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $b (i32.load8_u (i32.add (local.get $src) (local.get $i))))
        (i32.store8 (global.get $pos) (i32.load8_u (i32.add (i32.const 16) (i32.shr_u (local.get $b) (i32.const 4)))))
        (i32.store8 (i32.add (global.get $pos) (i32.const 1)) (i32.load8_u (i32.add (i32.const 16) (i32.and (local.get $b) (i32.const 15)))))
        (global.set $pos (i32.add (global.get $pos) (i32.const 2)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $byte))))

  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $r1 i32) (local $r2 i32) (local $r3 i32) (local $len i32)
    (local.set $r1 (call $timestamp (i32.const 8192) (i32.const 300)))
    (local.set $r2 (call $timestamp (i32.const 8704) (i32.const 300)))
    (i32.store (i32.const 9216) (i32.const 0))
    (local.set $r3 (call $timestamp (i32.const 9216) (i32.const 1)))

    (global.set $pos (i32.const 12288))
    (call $put (i32.const 64) (i32.const 3))
    (call $num (local.get $r1))
    (call $put (i32.const 72) (i32.const 4))
    (call $num (local.get $r2))
    (call $put (i32.const 80) (i32.const 4))
    (call $num (local.get $r3))
    (call $put (i32.const 88) (i32.const 3))
    (call $hex (i32.const 8192) (local.get $r1))
    (call $put (i32.const 96) (i32.const 3))
    (call $hex (i32.const 8704) (local.get $r2))
    (call $put (i32.const 104) (i32.const 3))
    (call $hex (i32.const 9216) (i32.const 4))
    (local.set $len (i32.sub (global.get $pos) (i32.const 12288)))

    ;; CDC1 deny: id "consensus" at 56, the reason at 65, no approvers.
    (i32.store (i32.const 4096) (i32.const 0x31434443))
    (i32.store (i32.const 4100) (i32.const 2))
    (i32.store (i32.const 4104) (i32.const 56))
    (i32.store (i32.const 4108) (i32.const 9))
    (i32.store (i32.const 4112) (i32.const 65))
    (i32.store (i32.const 4116) (local.get $len))
    (memory.fill (i32.const 4120) (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4148) (i32.const 56))
    (memory.copy (i32.const 4152) (i32.const 112) (i32.const 9))
    (memory.copy (i32.const 4161) (i32.const 12288) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 65) (local.get $len))))))
