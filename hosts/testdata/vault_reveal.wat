;; Reads a secret's plaintext through creto:vault-reveal/v1 (SPEC.md
;; §6.8), which needs its own grant: denies with the value of
;; agents/extension:hook/keys/SIGNING as the reason, or with reveal's error
;; code in decimal.
(module
  (import "creto:vault-reveal/v1" "reveal" (func $reveal (param i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "agents/extension:hook/keys")
  (data (i32.const 64) "SIGNING")
  (data (i32.const 96) "vault")
  (func (export "creto_abi_1"))
  ;; The arena: 4 KiB at 4096. The value lands at 12288.
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))

  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $r i32) (local $len i32)
    (local.set $r (call $reveal (i32.const 16) (i32.const 26) (i32.const 64) (i32.const 7) (i32.const 12288) (i32.const 256)))
    (local.set $len (local.get $r))
    (if (i32.lt_s (local.get $r) (i32.const 0))
      (then
        ;; an error: "-" and one digit
        (i32.store8 (i32.const 12288) (i32.const 45))
        (i32.store8 (i32.const 12289) (i32.add (i32.const 48) (i32.sub (i32.const 0) (local.get $r))))
        (local.set $len (i32.const 2))))
    (if (i32.gt_u (local.get $len) (i32.const 256)) (then (local.set $len (i32.const 0))))

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
    (memory.copy (i32.const 4157) (i32.const 12288) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 61) (local.get $len))))))
