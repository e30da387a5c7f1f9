;; The WAT helpers' conformance guest, assembled with ../creto.wat.
;; examples/wasm/conformance_test.go drives it twice: directly, through the
;; probe exports below, to hold the helpers to abi/testdata/golden byte for
;; byte; and through the engine, to check the import declarations against
;; the real host modules.

(import "creto:log/v1" "write" (func $creto_log (param i32 i32 i32)))
(import "creto:request/v1" "context" (func $creto_request_context (param i32 i32) (result i32)))
(import "creto:request/v1" "principal_attributes"
  (func $creto_request_principal_attributes (param i32 i32) (result i32)))
(import "creto:time/v1" "now" (func $creto_time_now (result i64)))
(import "creto:state/v1" "get" (func $creto_state_get (param i32 i32 i32 i32) (result i32)))
(import "creto:state/v1" "set" (func $creto_state_set (param i32 i32 i32 i32) (result i32)))
(import "creto:state/v1" "add" (func $creto_state_add (param i32 i32 i64 i64) (result i64)))

;; Strings, each at a 0x40-aligned address (the length is in the comment).
(data (i32.const 0x100) "no-deletes-after-hours")                          ;; 22
(data (i32.const 0x140) "deletes are allowed 08:00-18:00 only")            ;; 36
(data (i32.const 0x180) "large-transfer")                                  ;; 14
(data (i32.const 0x1c0) "two-person")                                      ;; 10
(data (i32.const 0x200) "cfo")                                             ;; 3
(data (i32.const 0x210) "controller")                                      ;; 10
;; The approver table: (ptr, len) pairs.
(data (i32.const 0x220) "\00\02\00\00\03\00\00\00\10\02\00\00\0a\00\00\00")
(data (i32.const 0x240) "llm-tokens/daily")                                ;; 16
(data (i32.const 0x280) "conformance: refused")                            ;; 20
(data (i32.const 0x2c0) "conformance: no such golden decision")            ;; 36
(data (i32.const 0x300) "conformance: malformed request")                  ;; 30
(data (i32.const 0x340) "hostcalls")                                       ;; 9
(data (i32.const 0x360) "golden-allow")                                    ;; 12
(data (i32.const 0x380) "golden-deny")                                     ;; 11
(data (i32.const 0x3a0) "golden-oversight")                                ;; 16
(data (i32.const 0x3c0) "golden-quota")                                    ;; 12
(data (i32.const 0x3e0) "golden-ratelimit")                                ;; 16
(data (i32.const 0x400) "refuse")                                          ;; 6
(data (i32.const 0x420) "conformance: hostcalls")                          ;; 22
(data (i32.const 0x440) "attrs")                                           ;; 5
(data (i32.const 0x450) "missing")                                         ;; 7
(data (i32.const 0x460) "calls")                                           ;; 5
(data (i32.const 0x480) "conformance: creto:request/v1 failed")            ;; 36
(data (i32.const 0x4c0) "conformance: creto:state/v1 get/set failed")      ;; 42
(data (i32.const 0x500) "conformance: creto:state/v1 found a missing key") ;; 47
;; Buffers for the host calls: 0x1000 context, 0x1400 attributes,
;; 0x1800 state read-back, 1 KiB each.

;; The golden decisions, numbered by kind like decision-*.json.
(func $golden (param $kind i32) (result i64)
  (block $bad
    (block $5
      (block $4
        (block $3
          (block $2
            (block $1
              (br_table $bad $1 $2 $3 $4 $5 $bad (local.get $kind)))
            (return (call $creto_allow)))
          (return (call $creto_deny (i32.const 0x100) (i32.const 22) (i32.const 0x140) (i32.const 36))))
        (return
          (call $creto_requires_oversight (i32.const 0x180) (i32.const 14) (i32.const 0x1c0) (i32.const 10)
            (i64.const 1800000000000) (i32.const 0x220) (i32.const 2))))
      (return
        (call $creto_quota_exceeded (i32.const 0x240) (i32.const 16)
          (i64.const 100000) (i64.const 100001) (i64.const 1764201600000000000))))
    (return (call $creto_rate_limited (i64.const 250000000) (i64.const 0))))
  (call $creto_error (i32.const 0x2c0) (i32.const 36)))

(func (export "golden_decision") (param $kind i32) (result i64)
  (call $golden (local.get $kind)))

(func (export "golden_error") (result i64)
  (call $creto_error (i32.const 0x280) (i32.const 20)))

;; (address << 32) | length of the string at a slot.
(func $view (param $slot i32) (result i64)
  (i64.or
    (i64.shl (i64.extend_i32_u (call $creto_ptr (local.get $slot))) (i64.const 32))
    (i64.extend_i32_u (call $creto_len (local.get $slot)))))

;; One field of the request in arena[0:n]: a string as (address << 32) |
;; length, or a number; -1 when the request is malformed or the field
;; unknown. Fields 0-8 are the strings in header order, 9 the flags, 10 the
;; outcome, 11 the delegation length, 16 + 2i and 17 + 2i link i.
(func (export "probe") (param $n i32) (param $field i32) (result i64)
  (local $link i32)
  (if (i32.eqz (call $creto_request_ok (local.get $n)))
    (then (return (i64.const -1))))
  (if (i32.le_u (local.get $field) (i32.const 8))
    (then (return (call $view (i32.shl (i32.add (local.get $field) (i32.const 1)) (i32.const 3))))))
  (if (i32.eq (local.get $field) (i32.const 9))
    (then (return (i64.extend_i32_u (call $creto_flags)))))
  (if (i32.eq (local.get $field) (i32.const 10))
    (then (return (i64.extend_i32_u (call $creto_outcome)))))
  (if (i32.eq (local.get $field) (i32.const 11))
    (then (return (i64.extend_i32_u (call $creto_delegation_len)))))
  (local.set $link (i32.shr_u (i32.sub (local.get $field) (i32.const 16)) (i32.const 1)))
  (if (i32.or
        (i32.lt_u (local.get $field) (i32.const 16))
        (i32.ge_u (local.get $link) (call $creto_delegation_len)))
    (then (return (i64.const -1))))
  (call $view
    (i32.add
      (call $creto_link (local.get $link))
      (i32.shl (i32.and (local.get $field) (i32.const 1)) (i32.const 3)))))

(func (export "creto_init") (param $n i32) (result i64)
  (if (i32.and
        (i32.eq (local.get $n) (i32.const 6))
        (call $creto_bytes_eq (global.get $creto_arena) (i32.const 0x400) (i32.const 6)))
    (then (return (call $creto_error (i32.const 0x280) (i32.const 20)))))
  (i64.const 0))

;; Calls every host function once and reports what they returned in a
;; quota decision: id the context, limit the counter, used the length of
;; the attributes, reset the clock.
(func $hostcalls (result i64)
  (local $ctx i32) (local $attrs i32) (local $calls i64)
  (call $creto_log (i32.const 1) (i32.const 0x420) (i32.const 22))
  (local.set $ctx (call $creto_request_context (i32.const 0x1000) (i32.const 1024)))
  (local.set $attrs (call $creto_request_principal_attributes (i32.const 0x1400) (i32.const 1024)))
  ;; Unsigned: an error code is a huge length.
  (if (i32.or
        (i32.gt_u (local.get $ctx) (i32.const 1024))
        (i32.gt_u (local.get $attrs) (i32.const 1024)))
    (then (return (call $creto_error (i32.const 0x480) (i32.const 36)))))
  (if (i32.or
        (i32.or
          (call $creto_state_set (i32.const 0x440) (i32.const 5) (i32.const 0x1400) (local.get $attrs))
          (i32.ne
            (call $creto_state_get (i32.const 0x440) (i32.const 5) (i32.const 0x1800) (i32.const 1024))
            (local.get $attrs)))
        (i32.eqz (call $creto_bytes_eq (i32.const 0x1800) (i32.const 0x1400) (local.get $attrs))))
    (then (return (call $creto_error (i32.const 0x4c0) (i32.const 42)))))
  (if (i32.ne
        (call $creto_state_get (i32.const 0x450) (i32.const 7) (i32.const 0x1800) (i32.const 1024))
        (i32.const -2)) ;; ENOTFOUND
    (then (return (call $creto_error (i32.const 0x500) (i32.const 47)))))
  (local.set $calls (call $creto_state_add (i32.const 0x460) (i32.const 5) (i64.const 1) (i64.const 0)))
  (call $creto_quota_exceeded (i32.const 0x1000) (local.get $ctx)
    (local.get $calls) (i64.extend_i32_u (local.get $attrs)) (call $creto_time_now)))

(func (export "creto_evaluate") (param $n i32) (result i64)
  (if (i32.eqz (call $creto_request_ok (local.get $n)))
    (then (return (call $creto_error (i32.const 0x300) (i32.const 30)))))
  ;; Slot 32 is the action id.
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x340) (i32.const 9))
    (then (return (call $hostcalls))))
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x360) (i32.const 12))
    (then (return (call $golden (i32.const 1)))))
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x380) (i32.const 11))
    (then (return (call $golden (i32.const 2)))))
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x3a0) (i32.const 16))
    (then (return (call $golden (i32.const 3)))))
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x3c0) (i32.const 12))
    (then (return (call $golden (i32.const 4)))))
  (if (call $creto_field_eq (i32.const 32) (i32.const 0x3e0) (i32.const 16))
    (then (return (call $golden (i32.const 5)))))
  (i64.const 0))
