;; Calls a host function in a loop, which may read and lower the fuel.
(module
  (import "env" "tick" (func $tick))
  (func (export "run") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (call $tick)
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))
)
