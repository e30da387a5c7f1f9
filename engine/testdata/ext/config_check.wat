;; Refuses a configuration that does not start with '{'.
(module
  (memory (export "memory") 2)
  (data (i32.const 16) "config must be a JSON object")
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_init") (param $n i32) (result i64)
    (if (i32.and (i32.gt_u (local.get $n) (i32.const 0)) (i32.eq (i32.load8_u (i32.const 4096)) (i32.const 123)))
      (then (return (i64.const 0))))
    (memory.copy (i32.const 4096) (i32.const 16) (i32.const 28))
    (i64.const 0x000000020000001c))
  (func (export "creto_evaluate") (param $n i32) (result i64) (i64.const 0)))
