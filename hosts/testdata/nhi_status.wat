;; Asks creto:nhi/v1 for the status of the request's principal (SPEC.md
;; §6.6) and lets every request continue: one host call per check, for the
;; benchmark against a guest that makes none.
(module
  (import "creto:nhi/v1" "status" (func $status (param i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "creto_abi_1"))
  ;; arena at 4096, 65536 bytes
  (func (export "creto_io") (result i64) (i64.const 0x0000100000010000))
  (func (export "creto_evaluate") (param $n i32) (result i64)
    ;; principal id: offset at arena+16, length at arena+20
    (drop (call $status
      (i32.add (i32.const 4096) (i32.load (i32.const 4112)))
      (i32.load (i32.const 4116))))
    (i64.const 0)))
