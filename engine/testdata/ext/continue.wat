;; Lets every request continue: the cheapest possible extension.
(module
  (memory (export "memory") 2)
  (func (export "creto_abi_1"))
  ;; arena at 4096, 65536 bytes
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64) (i64.const 0)))
