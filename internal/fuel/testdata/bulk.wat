;; Bulk memory, bulk table and reference-type instructions.
(module
  (memory 1)
  (data $greeting "hello, bulk world")
  (table $t 4 funcref)
  (table $ext 2 externref)
  (type $i2i (func (param i32) (result i32)))
  (elem $fns func $inc $dbl $sq)
  (global $g (mut i32) (i32.const 5))

  (func $inc (type $i2i) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $i2i) (i32.shl (local.get 0) (i32.const 1)))
  (func $sq (type $i2i) (i32.mul (local.get 0) (local.get 0)))

  ;; Checksum of memory [0, n) with a loop.
  (func $sum (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $s (i32.add (i32.mul (local.get $s) (i32.const 31))
                               (i32.load8_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $s))

  (func (export "memory_ops") (result i32)
    (memory.init $greeting (i32.const 0) (i32.const 0) (i32.const 17))
    (data.drop $greeting)
    (memory.copy (i32.const 100) (i32.const 0) (i32.const 17))
    (memory.fill (i32.const 3) (i32.const 0x2a) (i32.const 4))
    (memory.copy (i32.const 2) (i32.const 0) (i32.const 10)) ;; overlapping
    (call $sum (i32.const 128)))

  ;; Fills memory in a loop: the kernel for pricing bulk operations.
  (func (export "fill_loop") (param $n i32) (param $len i32) (result i32)
    (loop $l
      (memory.fill (i32.const 0) (local.get $n) (local.get $len))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (i32.load8_u (i32.const 0)))

  (func (export "table_ops") (param $x i32) (result i32)
    (local $r i32)
    (table.init $t $fns (i32.const 0) (i32.const 0) (i32.const 3))
    (elem.drop $fns)
    (table.copy $t $t (i32.const 3) (i32.const 0) (i32.const 1))
    ;; apply inc, dbl, sq, inc through call_indirect
    (local.set $r (local.get $x))
    (local.set $r (call_indirect $t (type $i2i) (local.get $r) (i32.const 0)))
    (local.set $r (call_indirect $t (type $i2i) (local.get $r) (i32.const 1)))
    (local.set $r (call_indirect $t (type $i2i) (local.get $r) (i32.const 2)))
    (local.set $r (call_indirect $t (type $i2i) (local.get $r) (i32.const 3)))
    ;; grow, size, fill, get, set, ref.null, ref.is_null, ref.func
    (drop (table.grow $t (ref.null func) (i32.const 2)))
    (table.fill $t (i32.const 4) (ref.func $sq) (i32.const 2))
    (table.set $t (i32.const 5) (table.get $t (i32.const 1)))
    (local.set $r (call_indirect $t (type $i2i) (local.get $r) (i32.const 5)))
    (local.set $r (i32.add (local.get $r) (table.size $t)))
    (local.set $r (i32.add (local.get $r)
      (ref.is_null (table.get $ext (i32.const 0)))))
    (table.set $ext (i32.const 1) (ref.null extern))
    (global.set $g (i32.add (global.get $g) (local.get $r)))
    (global.get $g))
)
