;; Denies the action "delete" with a reason; lets everything else continue.
;; Reads the action id from the request header (SPEC.md 4.1: offset 32,
;; length 36) and answers with a prebuilt decision record (SPEC.md 4.2).
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "delete")
  ;; CDC1, kind 2, id at 56 (9 bytes), text at 65 (19 bytes), a b c, 0 approvers at 84
  (data (i32.const 256) "\43\44\43\31\02\00\00\00\38\00\00\00\09\00\00\00\41\00\00\00\13\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\54\00\00\00no-deletedeletes are blocked")
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $off i32) (local $len i32) (local $i i32)
    (local.set $off (i32.load (i32.const 4128)))   ;; arena + 32
    (local.set $len (i32.load (i32.const 4132)))   ;; arena + 36
    (if (i32.ne (local.get $len) (i32.const 6)) (then (return (i64.const 0))))
    (block $differs
      (loop $next
        (br_if $differs (i32.ne
          (i32.load8_u (i32.add (i32.add (i32.const 4096) (local.get $off)) (local.get $i)))
          (i32.load8_u (i32.add (i32.const 16) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br_if $next (i32.lt_u (local.get $i) (i32.const 6))))
      (memory.copy (i32.const 4096) (i32.const 256) (i32.const 84))
      (return (i64.const 0x0000000100000054)))   ;; status 1, 84 bytes
    (i64.const 0)))
