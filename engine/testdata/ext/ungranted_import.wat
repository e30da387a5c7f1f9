;; Uses the prefilter capability without asking for it in its manifest.
(module
  (import "creto:prefilter/v1" "commit" (func $commit (result i32)))
  (memory (export "memory") 1)
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))
  (func (export "creto_evaluate") (param $n i32) (result i64) (drop (call $commit)) (i64.const 0)))
