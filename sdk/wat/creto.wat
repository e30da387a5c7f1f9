;; creto.wat - helpers for Creto extensions written in WAT (ABI v1, abi/SPEC.md).
;;
;; Not a module by itself: module fields that are assembled after the
;; guest's own, so the guest keeps its imports first as the text format
;; requires:
;;
;;   { echo '(module'; cat ext.wat creto.wat; echo ')'; } > full.wat
;;   wat2wasm full.wat -o ext.wasm
;;
;; or paste the functions you need into your module. They provide the
;; memory, the ABI marker, the arena and creto_io; the guest provides
;; creto_evaluate (and optionally creto_init). See template.wat.
;;
;; Memory: page 0 is the guest's, for its strings and buffers; page 1 is
;; the I/O arena. Addresses of request fields are absolute, so they can be
;; passed straight to the comparison and host functions.
;;
;; Request slots (SPEC.md 4.1): each is an (offset, length) pair at
;; arena + slot, the offset relative to the arena.
;;
;;    8 principal type    16 principal id
;;   24 action type       32 action id
;;   40 resource type     48 resource id
;;   56 context (JSON)    64 principal attributes (JSON)
;;   72 trace id
;;
;; Delegation link i has its type at slot $creto_link(i) and its id 8 bytes
;; after it.

(memory (export "memory") 2)

(global $creto_arena i32 (i32.const 65536))
(global $creto_arena_size i32 (i32.const 65536))

(func (export "creto_abi_1"))

;; (arena << 32) | size
(func (export "creto_io") (result i64)
  (i64.const 0x0001000000010000))

;; ---- Reading the request ---------------------------------------------

;; 1 when arena[0:n] holds a request. The engine is trusted to write
;; in-range offsets (it checks them against the same record), so only the
;; header is verified.
(func $creto_request_ok (param $n i32) (result i32)
  (i32.and
    (i32.and
      (i32.ge_u (local.get $n) (i32.const 96))
      (i32.le_u (local.get $n) (global.get $creto_arena_size)))
    (i32.eq (i32.load (global.get $creto_arena)) (i32.const 0x31515243)))) ;; "CRQ1"

;; The address of the string at a slot.
(func $creto_ptr (param $slot i32) (result i32)
  (i32.add
    (global.get $creto_arena)
    (i32.load (i32.add (global.get $creto_arena) (local.get $slot)))))

;; The length of the string at a slot.
(func $creto_len (param $slot i32) (result i32)
  (i32.load offset=4 (i32.add (global.get $creto_arena) (local.get $slot))))

;; Request flags: 1 context omitted, 2 principal attributes omitted.
(func $creto_flags (result i32)
  (i32.load16_u offset=6 (global.get $creto_arena)))

;; Cedar's decision so far: 1 allow, 3 requires oversight.
(func $creto_outcome (result i32)
  (i32.load offset=88 (global.get $creto_arena)))

(func $creto_delegation_len (result i32)
  (i32.load offset=80 (global.get $creto_arena)))

;; The slot of link i's type (its id is at the slot + 8).
(func $creto_link (param $i i32) (result i32)
  (i32.add
    (i32.load offset=84 (global.get $creto_arena))
    (i32.shl (local.get $i) (i32.const 4))))

;; 1 when n bytes at a and b are equal. Byte by byte: the strings compared
;; here are short, and a loop is smaller than anything cleverer.
(func $creto_bytes_eq (param $a i32) (param $b i32) (param $n i32) (result i32)
  (loop $next
    (if (i32.eqz (local.get $n))
      (then (return (i32.const 1))))
    (if (i32.ne (i32.load8_u (local.get $a)) (i32.load8_u (local.get $b)))
      (then (return (i32.const 0))))
    (local.set $a (i32.add (local.get $a) (i32.const 1)))
    (local.set $b (i32.add (local.get $b) (i32.const 1)))
    (local.set $n (i32.sub (local.get $n) (i32.const 1)))
    (br $next))
  (unreachable))

;; 1 when the string at a slot is the len bytes at ptr.
(func $creto_field_eq (param $slot i32) (param $ptr i32) (param $len i32) (result i32)
  (if (i32.ne (call $creto_len (local.get $slot)) (local.get $len))
    (then (return (i32.const 0))))
  (call $creto_bytes_eq (call $creto_ptr (local.get $slot)) (local.get $ptr) (local.get $len)))

;; 1 when the string at a slot starts with the len bytes at ptr.
(func $creto_field_has_prefix (param $slot i32) (param $ptr i32) (param $len i32) (result i32)
  (if (i32.lt_u (call $creto_len (local.get $slot)) (local.get $len))
    (then (return (i32.const 0))))
  (call $creto_bytes_eq (call $creto_ptr (local.get $slot)) (local.get $ptr) (local.get $len)))

;; ---- Answering ---------------------------------------------------------
;;
;; Results are (status << 32) | length: 0 continue, 1 decision, 2 error.
;; Every writer puts its record at the start of the arena, over the
;; request, so the strings it copies must not be in the arena: keep them in
;; page 0.

;; Copies len bytes at ptr to arena + at and writes (at, len) at
;; arena + slot; returns the offset after the copy.
(func $creto_put_str (param $slot i32) (param $at i32) (param $ptr i32) (param $len i32) (result i32)
  (local $s i32)
  (local.set $s (i32.add (global.get $creto_arena) (local.get $slot)))
  (i32.store (local.get $s) (local.get $at))
  (i32.store offset=4 (local.get $s) (local.get $len))
  (memory.copy
    (i32.add (global.get $creto_arena) (local.get $at))
    (local.get $ptr)
    (local.get $len))
  (i32.add (local.get $at) (local.get $len)))

;; A failure (status 2): the engine applies the extension's on_error; from
;; creto_init it refuses the configuration.
(func $creto_error (param $ptr i32) (param $len i32) (result i64)
  (if (i32.gt_u (local.get $len) (global.get $creto_arena_size))
    (then (local.set $len (global.get $creto_arena_size))))
  (memory.copy (global.get $creto_arena) (local.get $ptr) (local.get $len))
  (i64.or (i64.const 0x200000000) (i64.extend_i32_u (local.get $len))))

;; Every decision (SPEC.md 4.2): kind 1 allow, 2 deny, 3 requires
;; oversight, 4 quota exceeded, 5 rate limited; a, b and c mean different
;; things per kind. The approvers are n (ptr, len) pairs of i32 at
;; $approvers.
(func $creto_decision
  (param $kind i32) (param $id i32) (param $id_len i32) (param $text i32) (param $text_len i32)
  (param $a i64) (param $b i64) (param $c i64) (param $approvers i32) (param $n i32)
  (result i64)
  (local $at i32) (local $table i32) (local $i i32) (local $size i64) (local $pair i32)
  ;; A record larger than the arena traps rather than write past it: a
  ;; programming error, reported by the engine like any trap.
  (local.set $size
    (i64.add
      (i64.extend_i32_u (i32.add (i32.const 56) (local.get $id_len)))
      (i64.add
        (i64.extend_i32_u (local.get $text_len))
        (i64.shl (i64.extend_i32_u (local.get $n)) (i64.const 3)))))
  (block $sized
    (loop $next
      (br_if $sized (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $size
        (i64.add (local.get $size)
          (i64.load32_u offset=4
            (i32.add (local.get $approvers) (i32.shl (local.get $i) (i32.const 3))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
  (if (i64.gt_u (local.get $size) (i64.extend_i32_u (global.get $creto_arena_size)))
    (then (unreachable)))

  (i32.store (global.get $creto_arena) (i32.const 0x31434443)) ;; "CDC1"
  (i32.store offset=4 (global.get $creto_arena) (local.get $kind))
  (local.set $at (call $creto_put_str (i32.const 8) (i32.const 56) (local.get $id) (local.get $id_len)))
  (local.set $at (call $creto_put_str (i32.const 16) (local.get $at) (local.get $text) (local.get $text_len)))
  (i64.store offset=24 (global.get $creto_arena) (local.get $a))
  (i64.store offset=32 (global.get $creto_arena) (local.get $b))
  (i64.store offset=40 (global.get $creto_arena) (local.get $c))
  (i32.store offset=48 (global.get $creto_arena) (local.get $n))
  (i32.store offset=52 (global.get $creto_arena) (local.get $at))
  (local.set $table (local.get $at))
  (local.set $at (i32.add (local.get $at) (i32.shl (local.get $n) (i32.const 3))))
  (local.set $i (i32.const 0))
  (block $done
    (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $pair (i32.add (local.get $approvers) (i32.shl (local.get $i) (i32.const 3))))
      (local.set $at
        (call $creto_put_str
          (i32.add (local.get $table) (i32.shl (local.get $i) (i32.const 3)))
          (local.get $at)
          (i32.load (local.get $pair))
          (i32.load offset=4 (local.get $pair))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
  (i64.or (i64.const 0x100000000) (i64.extend_i32_u (local.get $at))))

(func $creto_allow (result i64)
  (call $creto_decision (i32.const 1)
    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
    (i64.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))

;; An empty policy id is reported as "ext:<name>".
(func $creto_deny (param $id i32) (param $id_len i32) (param $reason i32) (param $reason_len i32) (result i64)
  (call $creto_decision (i32.const 2)
    (local.get $id) (local.get $id_len) (local.get $reason) (local.get $reason_len)
    (i64.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 0)))

;; A timeout of 0 takes the engine's default.
(func $creto_requires_oversight
  (param $id i32) (param $id_len i32) (param $requirement i32) (param $requirement_len i32)
  (param $timeout_ns i64) (param $approvers i32) (param $n i32)
  (result i64)
  (call $creto_decision (i32.const 3)
    (local.get $id) (local.get $id_len) (local.get $requirement) (local.get $requirement_len)
    (local.get $timeout_ns) (i64.const 0) (i64.const 0) (local.get $approvers) (local.get $n)))

;; reset_at_ns is Unix time in nanoseconds, 0 when unknown.
(func $creto_quota_exceeded
  (param $id i32) (param $id_len i32) (param $limit i64) (param $used i64) (param $reset_at_ns i64)
  (result i64)
  (call $creto_decision (i32.const 4)
    (local.get $id) (local.get $id_len) (i32.const 0) (i32.const 0)
    (local.get $limit) (local.get $used) (local.get $reset_at_ns) (i32.const 0) (i32.const 0)))

(func $creto_rate_limited (param $retry_after_ns i64) (param $remaining i64) (result i64)
  (call $creto_decision (i32.const 5)
    (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
    (local.get $retry_after_ns) (local.get $remaining) (i64.const 0) (i32.const 0) (i32.const 0)))
