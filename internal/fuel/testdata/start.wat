;; A start function that loops forever when the host says so.
(module
  (import "env" "should_spin" (func $should_spin (result i32)))
  (func $init
    (if (call $should_spin)
      (then (loop br 0))))
  (start $init)
  (func (export "answer") (result i32) (i32.const 42))
)
