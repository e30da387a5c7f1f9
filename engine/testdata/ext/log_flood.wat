;; Logs 1,000 lines per call: the engine must keep only its per-second share.
(module
  (import "creto:log/v1" "write" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "flood")
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $i i32)
    (loop $more
      (call $log (i32.const 1) (i32.const 16) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $more (i32.lt_u (local.get $i) (i32.const 1000))))
    (i64.const 0)))
