;; Drives creto:storage/v1 (SPEC.md §6.9) from the request: the action id
;; names the call — put, get, get-small (into a 4-byte buffer), stat or
;; delete — the principal id is the bucket ("-" for none) and the
;; resource id the key; put stores the request's context JSON as
;; agent data with the default lifetime. The guest denies with the result
;; as the reason: get's data, stat's 32-byte record in hex, or the call's
;; result in decimal ("0", "-1" denied, "-2" not found, …).
(module
  (import "creto:storage/v1" "put" (func $put (param i32 i32 i32 i32 i32 i32 i32 i64) (result i32)))
  (import "creto:storage/v1" "get" (func $get (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "creto:storage/v1" "stat" (func $stat (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "creto:storage/v1" "delete" (func $delete (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (global $pos (mut i32) (i32.const 0))
  (data (i32.const 16) "put")
  (data (i32.const 32) "get")
  (data (i32.const 48) "get-small")
  (data (i32.const 64) "stat")
  (data (i32.const 80) "delete")
  (data (i32.const 96) "0123456789abcdef")
  (data (i32.const 112) "storage")
  (func (export "creto_abi_1"))
  ;; The arena: 64 KiB at 0x1000. get and stat write at 0x11000 (8 KiB),
  ;; the reason is built at 0x13000, numbers at 0x1f000.
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))

  ;; The address and length of a request string (SPEC.md §4.1).
  (func $ptr (param $slot i32) (result i32)
    (i32.add (i32.const 0x1000) (i32.load (i32.add (i32.const 0x1000) (local.get $slot)))))
  (func $len (param $slot i32) (result i32)
    (i32.load (i32.add (i32.const 0x1004) (local.get $slot))))

  ;; 1 when the string at a slot is the n bytes at p.
  (func $is (param $slot i32) (param $p i32) (param $n i32) (result i32)
    (local $a i32)
    (if (i32.ne (call $len (local.get $slot)) (local.get $n))
      (then (return (i32.const 0))))
    (local.set $a (call $ptr (local.get $slot)))
    (loop $next
      (if (i32.eqz (local.get $n))
        (then (return (i32.const 1))))
      (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $p)))
        (then (return (i32.const 0))))
      (local.set $a (i32.add (local.get $a) (i32.const 1)))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next))
    (unreachable))

  (func $byte (param $b i32)
    (i32.store8 (global.get $pos) (local.get $b))
    (global.set $pos (i32.add (global.get $pos) (i32.const 1))))

  ;; $num appends v in decimal, with a minus sign when negative.
  (func $num (param $v i32)
    (local $p i32)
    (if (i32.lt_s (local.get $v) (i32.const 0))
      (then
        (call $byte (i32.const 45))
        (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
    (local.set $p (i32.const 0x1f100))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (memory.copy (global.get $pos) (local.get $p) (i32.sub (i32.const 0x1f100) (local.get $p)))
    (global.set $pos (i32.add (global.get $pos) (i32.sub (i32.const 0x1f100) (local.get $p)))))

  ;; $hex appends n bytes at p in hex.
  (func $hex (param $p i32) (param $n i32)
    (local $b i32)
    (loop $next
      (if (i32.eqz (local.get $n))
        (then (return)))
      (local.set $b (i32.load8_u (local.get $p)))
      (call $byte (i32.load8_u (i32.add (i32.const 96) (i32.shr_u (local.get $b) (i32.const 4)))))
      (call $byte (i32.load8_u (i32.add (i32.const 96) (i32.and (local.get $b) (i32.const 15)))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))

  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $b i32) (local $bl i32) (local $k i32) (local $kl i32) (local $r i32) (local $len i32)
    (local.set $b (call $ptr (i32.const 16)))
    (local.set $bl (call $len (i32.const 16)))
    (if (i32.and (i32.eq (local.get $bl) (i32.const 1)) (i32.eq (i32.load8_u (local.get $b)) (i32.const 45)))
      (then (local.set $bl (i32.const 0))))
    (local.set $k (call $ptr (i32.const 48)))
    (local.set $kl (call $len (i32.const 48)))
    (global.set $pos (i32.const 0x13000))

    (if (call $is (i32.const 32) (i32.const 16) (i32.const 3))
      (then
        (call $num (call $put (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
          (call $ptr (i32.const 56)) (call $len (i32.const 56)) (i32.const 1) (i64.const 0)))))
    (if (call $is (i32.const 32) (i32.const 32) (i32.const 3))
      (then
        (local.set $r (call $get (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
          (i32.const 0x11000) (i32.const 8192)))
        (if (i32.and (i32.ge_s (local.get $r) (i32.const 0)) (i32.le_s (local.get $r) (i32.const 8192)))
          (then
            (memory.copy (global.get $pos) (i32.const 0x11000) (local.get $r))
            (global.set $pos (i32.add (global.get $pos) (local.get $r))))
          (else (call $num (local.get $r))))))
    (if (call $is (i32.const 32) (i32.const 48) (i32.const 9))
      (then
        (call $num (call $get (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
          (i32.const 0x11000) (i32.const 4)))))
    (if (call $is (i32.const 32) (i32.const 64) (i32.const 4))
      (then
        (local.set $r (call $stat (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)
          (i32.const 0x11000) (i32.const 64)))
        (if (i32.eq (local.get $r) (i32.const 32))
          (then (call $hex (i32.const 0x11000) (i32.const 32)))
          (else (call $num (local.get $r))))))
    (if (call $is (i32.const 32) (i32.const 80) (i32.const 6))
      (then
        (call $num (call $delete (local.get $b) (local.get $bl) (local.get $k) (local.get $kl)))))
    (local.set $len (i32.sub (global.get $pos) (i32.const 0x13000)))

    ;; CDC1 deny: id "storage" at 56, the reason at 63, no approvers.
    (i32.store (i32.const 0x1000) (i32.const 0x31434443))
    (i32.store (i32.const 0x1004) (i32.const 2))
    (i32.store (i32.const 0x1008) (i32.const 56))
    (i32.store (i32.const 0x100c) (i32.const 7))
    (i32.store (i32.const 0x1010) (i32.const 63))
    (i32.store (i32.const 0x1014) (local.get $len))
    (memory.fill (i32.const 0x1018) (i32.const 0) (i32.const 32))
    (i32.store (i32.const 0x1034) (i32.const 56))
    (memory.copy (i32.const 0x1038) (i32.const 112) (i32.const 7))
    (memory.copy (i32.const 0x103f) (i32.const 0x13000) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 63) (local.get $len))))))
