;; agent-no-approve: agents may not approve payments; a person must.
;;
;; Module fields, assembled with sdk/wat/creto.wat (docs/extensions.md).
;; The manifest's prefilter already limits calls to Agents approving
;; payments; checking both again keeps the module right under any
;; manifest, for the price of two comparisons.

(data (i32.const 0x100) "Agent")                               ;; 5
(data (i32.const 0x110) "approve_payment")                     ;; 15
(data (i32.const 0x120) "agents-cannot-approve")               ;; 21
(data (i32.const 0x140) "payments need a human approver")      ;; 30
(data (i32.const 0x160) "agent-no-approve: malformed request") ;; 35

(func (export "creto_evaluate") (param $n i32) (result i64)
  (if (i32.eqz (call $creto_request_ok (local.get $n)))
    (then (return (call $creto_error (i32.const 0x160) (i32.const 35)))))
  ;; Slot 8 is the principal type, slot 32 the action id.
  (if (i32.and
        (call $creto_field_eq (i32.const 8) (i32.const 0x100) (i32.const 5))
        (call $creto_field_eq (i32.const 32) (i32.const 0x110) (i32.const 15)))
    (then (return (call $creto_deny (i32.const 0x120) (i32.const 21) (i32.const 0x140) (i32.const 30)))))
  (i64.const 0))
