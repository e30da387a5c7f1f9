;; Reports what creto:nhi/v1 says about the request's principal: denies
;; every request of an Agent principal with a reason that lists each
;; function's answer, "registered=1 revoked=0 status=1 owner=alice
;; type=service team=payments nope=-2 ownerlen=5", numbers being return
;; codes (SPEC.md §6.6). Other principal types continue. The test asserts
;; the reason, so every function is exercised through the real ABI.
(module
  (import "creto:nhi/v1" "is_registered" (func $is_registered (param i32 i32) (result i32)))
  (import "creto:nhi/v1" "is_revoked" (func $is_revoked (param i32 i32) (result i32)))
  (import "creto:nhi/v1" "status" (func $status (param i32 i32) (result i32)))
  (import "creto:nhi/v1" "owner" (func $owner (param i32 i32 i32 i32) (result i32)))
  (import "creto:nhi/v1" "agent_type" (func $agent_type (param i32 i32 i32 i32) (result i32)))
  (import "creto:nhi/v1" "attribute" (func $attribute (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $pos (mut i32) (i32.const 0))
  (data (i32.const 16) "team")
  (data (i32.const 24) "nope")
  (data (i32.const 32) "Agent")
  (data (i32.const 40) "nhi")
  (data (i32.const 64) "registered=")
  (data (i32.const 80) " revoked=")
  (data (i32.const 96) " status=")
  (data (i32.const 112) " owner=")
  (data (i32.const 128) " type=")
  (data (i32.const 144) " team=")
  (data (i32.const 160) " nope=")
  (data (i32.const 176) " ownerlen=")
  (func (export "creto_abi_1"))
  ;; The arena: 4 KiB at 4096. The reason is built at 12288.
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

  ;; $text appends a string a host function wrote at the cursor, or its
  ;; error code.
  (func $text (param $r i32)
    (if (i32.ge_s (local.get $r) (i32.const 0))
      (then (global.set $pos (i32.add (global.get $pos) (local.get $r))))
      (else (call $num (local.get $r)))))

  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $id i32) (local $idn i32) (local $t i32) (local $len i32)
    ;; Only Agent principals: the type string is at arena+8.
    (if (i32.ne (i32.load (i32.const 4108)) (i32.const 5)) (then (return (i64.const 0))))
    (local.set $t (i32.add (i32.const 4096) (i32.load (i32.const 4104))))
    (if (i32.or
          (i32.ne (i32.load (local.get $t)) (i32.load (i32.const 32)))
          (i32.ne (i32.load8_u (i32.add (local.get $t) (i32.const 4))) (i32.load8_u (i32.const 36))))
      (then (return (i64.const 0))))
    (local.set $id (i32.add (i32.const 4096) (i32.load (i32.const 4112))))
    (local.set $idn (i32.load (i32.const 4116)))

    (global.set $pos (i32.const 12288))
    (call $put (i32.const 64) (i32.const 11))
    (call $num (call $is_registered (local.get $id) (local.get $idn)))
    (call $put (i32.const 80) (i32.const 9))
    (call $num (call $is_revoked (local.get $id) (local.get $idn)))
    (call $put (i32.const 96) (i32.const 8))
    (call $num (call $status (local.get $id) (local.get $idn)))
    (call $put (i32.const 112) (i32.const 7))
    (call $text (call $owner (local.get $id) (local.get $idn) (global.get $pos) (i32.const 256)))
    (call $put (i32.const 128) (i32.const 6))
    (call $text (call $agent_type (local.get $id) (local.get $idn) (global.get $pos) (i32.const 256)))
    (call $put (i32.const 144) (i32.const 6))
    (call $text (call $attribute (local.get $id) (local.get $idn) (i32.const 16) (i32.const 4) (global.get $pos) (i32.const 256)))
    (call $put (i32.const 160) (i32.const 6))
    (call $text (call $attribute (local.get $id) (local.get $idn) (i32.const 24) (i32.const 4) (global.get $pos) (i32.const 256)))
    ;; A one-byte buffer is too small: the full length comes back.
    (call $put (i32.const 176) (i32.const 10))
    (call $num (call $owner (local.get $id) (local.get $idn) (global.get $pos) (i32.const 1)))
    (local.set $len (i32.sub (global.get $pos) (i32.const 12288)))

    ;; CDC1 deny: id "nhi" at 56, the reason at 59, no approvers.
    (i32.store (i32.const 4096) (i32.const 0x31434443))
    (i32.store (i32.const 4100) (i32.const 2))
    (i32.store (i32.const 4104) (i32.const 56))
    (i32.store (i32.const 4108) (i32.const 3))
    (i32.store (i32.const 4112) (i32.const 59))
    (i32.store (i32.const 4116) (local.get $len))
    (memory.fill (i32.const 4120) (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4148) (i32.const 56))
    (memory.copy (i32.const 4152) (i32.const 40) (i32.const 3))
    (memory.copy (i32.const 4155) (i32.const 12288) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 59) (local.get $len))))))
