;; Claims a decision whose length runs past the arena, or (for action
;; "magic") a decision with a bad magic number and offsets out of range.
(module
  (memory (export "memory") 2)
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    (if (i32.eq (i32.load (i32.const 4132)) (i32.const 5))
      (then
        (i32.store (i32.const 4096) (i32.const 0xdeadbeef))
        (i32.store (i32.const 4104) (i32.const 0x7fffffff))
        (return (i64.const 0x0000000100000038))))
    (i64.const 0x00000001ffffffff)))
