;; Code that never terminates by itself.
(module
  (func (export "spin") (loop br 0))
  (func $ping (call $pong))
  (func $pong (call $ping))
  (func (export "recurse") (call $ping))
  ;; Terminates, for checking an instance is fine after a trap.
  (func (export "answer") (result i32) (i32.const 42))
)
