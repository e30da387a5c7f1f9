;; template.wat - a starting point for a Creto extension in WAT.
;;
;; This file holds module fields only; creto.wat supplies the memory, the
;; arena, the ABI exports and the helpers called below. Assemble with
;;
;;   { echo '(module'; cat template.wat creto.wat; echo ')'; } > full.wat
;;   wat2wasm full.wat -o template.wasm
;;
;; then write the manifest into the module (docs/extensions.md).

;; ---- Imports -----------------------------------------------------------
;; Import only what you call: the engine refuses imports of capabilities
;; the manifest does not list. Imports must come first in the module.
;;
;; Always granted:
;;   (import "creto:log/v1" "write" (func $creto_log (param i32 i32 i32)))   ;; level 0-3, ptr, len
;;   (import "creto:request/v1" "context"
;;     (func $creto_request_context (param i32 i32) (result i32)))            ;; out, cap -> length
;;   (import "creto:request/v1" "principal_attributes"
;;     (func $creto_request_principal_attributes (param i32 i32) (result i32)))
;; Capability "time":
;;   (import "creto:time/v1" "now" (func $creto_time_now (result i64)))      ;; Unix ns
;; Capability "state":
;;   (import "creto:state/v1" "get" (func $creto_state_get (param i32 i32 i32 i32) (result i32)))
;;   (import "creto:state/v1" "set" (func $creto_state_set (param i32 i32 i32 i32) (result i32)))
;;   (import "creto:state/v1" "add" (func $creto_state_add (param i32 i32 i64 i64) (result i64)))
;;
;; Host functions return the full length of their result, writing nothing
;; when it exceeds the buffer, or a negative error (-2 is "not found").

(import "creto:log/v1" "write" (func $creto_log (param i32 i32 i32)))

;; ---- Data ----------------------------------------------------------------
;; Page 0 is yours; keep every string's length beside it.

(data (i32.const 0x100) "example")                    ;; 7: the action denied
(data (i32.const 0x110) "template")                   ;; 8: the policy id
(data (i32.const 0x120) "replace this rule")          ;; 17: the reason
(data (i32.const 0x140) "template: malformed request") ;; 27
(data (i32.const 0x160) "template: ready")            ;; 15

;; ---- Entry points ----------------------------------------------------------

;; Optional: the operator's configuration is at arena[0:n]. Return 0 to
;; accept it, or $creto_error to refuse it (the registration then fails).
(func (export "creto_init") (param $n i32) (result i64)
  (call $creto_log (i32.const 1) (i32.const 0x160) (i32.const 15))
  (i64.const 0))

;; The request is at arena[0:n]. Return 0 to let it continue, a decision
;; from one of the $creto_* writers, or $creto_error.
(func (export "creto_evaluate") (param $n i32) (result i64)
  (if (i32.eqz (call $creto_request_ok (local.get $n)))
    (then (return (call $creto_error (i32.const 0x140) (i32.const 27)))))
  ;; The rule: deny the action "example" (slot 32 is the action id).
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x100) (i32.const 7))
    (then (return (call $creto_deny (i32.const 0x110) (i32.const 8) (i32.const 0x120) (i32.const 17)))))
  (i64.const 0))
