;; Pulls the context through creto:request/v1 and denies when it is longer
;; than 100 bytes; logs its length. Exercises host calls and the retry
;; convention (asks with a zero-size buffer first).
(module
  (import "creto:request/v1" "context" (func $context (param i32 i32) (result i32)))
  (import "creto:log/v1" "write" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "long context")
  (data (i32.const 256) "\43\44\43\31\02\00\00\00\00\00\00\00\00\00\00\00\38\00\00\00\0c\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00\44\00\00\00long context")
  (func (export "creto_abi_1"))
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    (local $len i32)
    (local.set $len (call $context (i32.const 0) (i32.const 0)))
    (call $log (i32.const 1) (i32.const 16) (i32.const 12))
    (if (i32.gt_s (local.get $len) (i32.const 100))
      (then
        (memory.copy (i32.const 4096) (i32.const 256) (i32.const 68))
        (return (i64.const 0x0000000100000044))))
    (i64.const 0)))
