;; Tail calls (return_call, return_call_indirect).
(module
  (type $countdown (func (param i32 i32) (result i32)))
  (table 1 funcref)
  (elem (i32.const 0) $odd)

  ;; Counts n down by tail calls alternating between two functions, one
  ;; direct and one indirect; deep n would overflow the stack without them.
  (func $even (type $countdown) (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else
        (return_call_indirect (type $countdown)
          (i32.sub (local.get $n) (i32.const 1))
          (i32.add (local.get $acc) (i32.const 2))
          (i32.const 0)))))
  (func $odd (type $countdown) (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else
        (return_call $even
          (i32.sub (local.get $n) (i32.const 1))
          (i32.add (local.get $acc) (i32.const 3))))))
  (func (export "countdown") (param $n i32) (result i32)
    (return_call $even (local.get $n) (i32.const 0)))

  ;; Infinite mutual tail recursion: the stack never grows, so only fuel
  ;; can stop it.
  (func $ping (return_call $pong))
  (func $pong (return_call $ping))
  (func (export "tail_spin") (call $ping))

  ;; Terminates, for checking an instance is fine after a trap.
  (func (export "answer") (result i32) (i32.const 42))
)
