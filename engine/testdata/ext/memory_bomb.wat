;; Grows memory until it cannot, then traps.
(module
  (memory (export "memory") 2)
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    (loop $more
      (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))
    unreachable))
