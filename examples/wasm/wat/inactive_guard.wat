;; inactive-guard: denies an agent that the identity registry (NHI) does
;; not hold as active — suspended, revoked, expired or unknown — and keeps
;; a record of every denial in the node's object storage.
;;
;; Two host capabilities: nhi (creto:nhi/v1, SPEC.md §6.6) for the
;; registry's verified status of the principal, and storage
;; (creto:storage/v1, §6.9) for the record. Each denial stores a new
;; version of the object inactive-guard/<agent id>, owned by the
;; extension's identity "extension:inactive-guard", holding
;; "status=<code>". Storage keeps every version, so the versions are the
;; agent's denial log and their number its denial count (List with
;; all_versions); a read-modify-write counter would lose counts between
;; the extension's pooled instances, a version per denial cannot.
;;
;; Fail secure: a status the registry cannot give (-5 unavailable, -3
;; deadline) is not "active", so the agent is denied. Recording is best
;; effort: the deny stands whatever put returns.
;;
;; Module fields, assembled with sdk/wat/creto.wat (docs/extensions.md).

(import "creto:nhi/v1" "status" (func $nhi_status (param i32 i32) (result i32)))
(import "creto:storage/v1" "put"
  (func $storage_put (param i32 i32 i32 i32 i32 i32 i32 i64) (result i32)))

(data (i32.const 0x100) "Agent")                                            ;; 5
(data (i32.const 0x110) "inactive-guard")                                   ;; 14: the bucket
(data (i32.const 0x120) "inactive-agent")                                   ;; 14: the policy id
(data (i32.const 0x130) "the agent is not active in the identity registry") ;; 48
(data (i32.const 0x160) "inactive-guard: malformed request")                ;; 33
(data (i32.const 0x190) "status=")                                          ;; 7
;; 0x200: the record, "status=" and the code in decimal.

;; Writes "status=<code>" at 0x200 and returns its length.
(func $record (param $code i32) (result i32)
  (local $at i32) (local $p i32)
  (memory.copy (i32.const 0x200) (i32.const 0x190) (i32.const 7))
  (local.set $at (i32.const 0x207))
  (if (i32.lt_s (local.get $code) (i32.const 0))
    (then
      (i32.store8 (local.get $at) (i32.const 45)) ;; '-'
      (local.set $at (i32.add (local.get $at) (i32.const 1)))
      (local.set $code (i32.sub (i32.const 0) (local.get $code)))))
  ;; Digits backwards from 0x2f0, then moved into place.
  (local.set $p (i32.const 0x2f0))
  (loop $digit
    (local.set $p (i32.sub (local.get $p) (i32.const 1)))
    (i32.store8 (local.get $p) (i32.add (i32.const 48) (i32.rem_u (local.get $code) (i32.const 10))))
    (local.set $code (i32.div_u (local.get $code) (i32.const 10)))
    (br_if $digit (local.get $code)))
  (memory.copy (local.get $at) (local.get $p) (i32.sub (i32.const 0x2f0) (local.get $p)))
  (i32.sub (i32.add (local.get $at) (i32.sub (i32.const 0x2f0) (local.get $p))) (i32.const 0x200)))

(func (export "creto_evaluate") (param $n i32) (result i64)
  (local $status i32)
  (if (i32.eqz (call $creto_request_ok (local.get $n)))
    (then (return (call $creto_error (i32.const 0x160) (i32.const 33)))))
  ;; Only agents have an NHI status (slot 8 is the principal type, 16 its id).
  (if (i32.eqz (call $creto_field_eq (i32.const 8) (i32.const 0x100) (i32.const 5)))
    (then (return (i64.const 0))))
  (local.set $status (call $nhi_status (call $creto_ptr (i32.const 16)) (call $creto_len (i32.const 16))))
  (if (i32.eq (local.get $status) (i32.const 1))
    (then (return (i64.const 0))))
  ;; The id is read from the request before the decision overwrites it.
  (drop (call $storage_put
    (i32.const 0x110) (i32.const 14)
    (call $creto_ptr (i32.const 16)) (call $creto_len (i32.const 16))
    (i32.const 0x200) (call $record (local.get $status))
    (i32.const 1)     ;; agent data
    (i64.const 0)))   ;; the node's default lifetime
  (call $creto_deny (i32.const 0x120) (i32.const 14) (i32.const 0x130) (i32.const 48)))
