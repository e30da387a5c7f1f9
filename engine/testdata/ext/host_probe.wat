;; Calls creto:probe/v1 probe() once in creto_init and once per evaluation,
;; then lets the request continue: the test's host module records what
;; engine.EvaluatingFrom says at each call.
(module
  (import "creto:probe/v1" "probe" (func $probe (result i32)))
  (memory (export "memory") 1)
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000001000))
  (func (export "creto_init") (param $n i32) (result i64) (drop (call $probe)) (i64.const 0))
  (func (export "creto_evaluate") (param $n i32) (result i64) (drop (call $probe)) (i64.const 0)))
