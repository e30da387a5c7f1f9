;; Reports to the audit log through creto:audit/v1 (SPEC.md §6.9). Its
;; creto_init emits "ext.loaded"; each evaluation emits "payment.flagged"
;; about the request's resource id, outcome denied, why "over the limit",
;; context {"rule":"r1"}, and denies with emit's result in decimal as the
;; reason ("0" recorded, "-4" invalid, "-5" unavailable or rate-limited).
(module
  (import "creto:audit/v1" "emit" (func $emit (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (global $pos (mut i32) (i32.const 0))
  (data (i32.const 16) "payment.flagged")
  (data (i32.const 64) "over the limit")
  (data (i32.const 96) "{\"rule\":\"r1\"}")
  (data (i32.const 128) "ext.loaded")
  (data (i32.const 160) "audit")
  (func (export "creto_abi_1"))
  ;; The arena: 4 KiB at 4096. The reason is built at 12544.
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))

  (func (export "creto_init") (param $n i32) (result i64)
    (drop (call $emit (i32.const 128) (i32.const 10) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (i32.const 0) (i32.const 0) (i32.const 0)))
    (i64.const 0))

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
    (local $r i32) (local $len i32)
    ;; resource: the request's resource id, at arena + its offset (arena+48), length at arena+52
    (local.set $r (call $emit
      (i32.const 16) (i32.const 15)
      (i32.add (i32.const 4096) (i32.load (i32.const 4144))) (i32.load (i32.const 4148))
      (i32.const 64) (i32.const 14)
      (i32.const 2)
      (i32.const 96) (i32.const 13)))
    (global.set $pos (i32.const 12544))
    (call $num (local.get $r))
    (local.set $len (i32.sub (global.get $pos) (i32.const 12544)))

    ;; CDC1 deny: id "audit" at 56, the reason at 61, no approvers.
    (i32.store (i32.const 4096) (i32.const 0x31434443))
    (i32.store (i32.const 4100) (i32.const 2))
    (i32.store (i32.const 4104) (i32.const 56))
    (i32.store (i32.const 4108) (i32.const 5))
    (i32.store (i32.const 4112) (i32.const 61))
    (i32.store (i32.const 4116) (local.get $len))
    (memory.fill (i32.const 4120) (i32.const 0) (i32.const 32))
    (i32.store (i32.const 4148) (i32.const 56))
    (memory.copy (i32.const 4152) (i32.const 160) (i32.const 5))
    (memory.copy (i32.const 4157) (i32.const 12544) (local.get $len))
    (i64.or (i64.const 0x100000000) (i64.extend_i32_u (i32.add (i32.const 61) (local.get $len))))))
