;; Never finishes starting.
(module
  (memory (export "memory") 2)
  (func $spin (loop $forever (br $forever)))
  (start $spin)
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64) (i64.const 0)))
