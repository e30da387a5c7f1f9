;; Uses a secret through creto:vault/v1 (SPEC.md §6.7) without seeing it:
;; MACs the request's principal id with the secret
;; agents/extension:hook/keys/SIGNING and denies with the MAC in hex as the
;; reason, or with mac's error code in decimal ("-1" denied, "-2" not
;; found, …). The test compares the reason with an HMAC it computes.
(module
  (import "creto:vault/v1" "mac" (func $mac (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $pos (mut i32) (i32.const 0))
  (data (i32.const 16) "agents/extension:hook/keys")
  (data (i32.const 64) "SIGNING")
  (data (i32.const 80) "0123456789abcdef")
  (data (i32.const 96) "vault")
  (func (export "creto_abi_1"))
  ;; The arena: 4 KiB at 4096. The MAC lands at 12288, the reason at 12544.
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))

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
    (local.set $p (i32.const 12000))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (br_if $digit (local.get $v)))
    (memory.copy (global.get $pos) (local.get $p) (i32.sub (i32.const 12000) (local.get $p)))
    (global.set $pos (i32.add (global.get $pos) (i32.sub (i32.const 12000) (local.get $p)))))

  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $r i32) (local $i i32) (local $b i32) (local $len i32)
    ;; data: the principal id, at arena + its offset (arena+16), length at arena+20
    (local.set $r (call $mac
      (i32.const 16) (i32.const 26) (i32.const 64) (i32.const 7)
      (i32.add (i32.const 4096) (i32.load (i32.const 4112))) (i32.load (i32.const 4116))
      (i32.const 12288) (i32.const 64)))
    (global.set $pos (i32.const 12544))
    (if (i32.eq (local.get $r) (i32.const 32))
      (then
        (loop $hex
          (local.set $b (i32.load8_u (i32.add (i32.const 12288) (local.get $i))))
          (call $byte (i32.load8_u (i32.add (i32.const 80) (i32.shr_u (local.get $b) (i32.const 4)))))
          (call $byte (i32.load8_u (i32.add (i32.const 80) (i32.and (local.get $b) (i32.const 15)))))
          (local.set $i (i32.add (local.get $i) (i32.const 1)))
          (br_if $hex (i32.lt_u (local.get $i) (i32.const 32)))))
      (else (call $num (local.get $r))))
    (local.set $len (i32.sub (global.get $pos) (i32.const 12544)))

    ;; CDC1 deny: id "vault" at 56, the reason at 61, no approvers.
    (i32.store (i32.const 4096) (i32.const 0x31434443))
    (i32.store (i32.const 4100) (i32.const 2))
    (i32.store (i32.const 4104) (i32.const 56))
    (i32.store (i32.const 4108) (i32.const 5))
    (i32.store (i32.const 4112) (i32.const 61))
    (i32.store (i32.const 4116) (local.get $len))
    (memory.fill (i32.const 4120) (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4148) (i32.const 56))
    (memory.copy (i32.const 4152) (i32.const 96) (i32.const 5))
    (memory.copy (i32.const 4157) (i32.const 12544) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 61) (local.get $len))))))
