;; Functions that compute something, to check that instrumentation keeps
;; results identical: loops, recursion, nesting, br_table, multi-value.
(module
  (func (export "noop"))

  ;; n! with a loop.
  (func (export "fac") (param $n i64) (result i64)
    (local $acc i64)
    (local.set $acc (i64.const 1))
    (block $done
      (loop $next
        (br_if $done (i64.le_s (local.get $n) (i64.const 1)))
        (local.set $acc (i64.mul (local.get $acc) (local.get $n)))
        (local.set $n (i64.sub (local.get $n) (i64.const 1)))
        (br $next)))
    (local.get $acc))

  ;; Naive recursive Fibonacci.
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else
        (i32.add
          (call $fib (i32.sub (local.get $n) (i32.const 1)))
          (call $fib (i32.sub (local.get $n) (i32.const 2)))))))

  ;; Sum of i*j + k over three nested loops.
  (func (export "nested") (param $n i32) (result i32)
    (local $i i32) (local $j i32) (local $k i32) (local $s i32)
    (loop $li
      (local.set $j (i32.const 0))
      (loop $lj
        (local.set $k (i32.const 0))
        (loop $lk
          (local.set $s (i32.add (local.get $s)
            (i32.add (i32.mul (local.get $i) (local.get $j)) (local.get $k))))
          (local.set $k (i32.add (local.get $k) (i32.const 1)))
          (br_if $lk (i32.lt_u (local.get $k) (local.get $n))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br_if $lj (i32.lt_u (local.get $j) (local.get $n))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $li (i32.lt_u (local.get $i) (local.get $n))))
    (local.get $s))

  ;; br_table dispatch inside a loop: sums a code per step.
  (func (export "dispatch") (param $n i32) (result i32)
    (local $s i32)
    (block $exit
      (loop $step
        (br_if $exit (i32.eqz (local.get $n)))
        (block $d (block $c (block $b (block $a
          (br_table $a $b $c $d (i32.rem_u (local.get $n) (i32.const 5))))
          (local.set $s (i32.add (local.get $s) (i32.const 1))) (br $d))
          (local.set $s (i32.add (local.get $s) (i32.const 10))) (br $d))
          (local.set $s (i32.add (local.get $s) (i32.const 100))) (br $d))
        (local.set $s (i32.add (local.get $s) (i32.const 1000)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $step)))
    (local.get $s))

  ;; Multi-value: blocks and a loop with parameters and several results.
  (func $divmod (param $a i32) (param $b i32) (result i32 i32)
    (i32.div_u (local.get $a) (local.get $b))
    (i32.rem_u (local.get $a) (local.get $b)))
  (func (export "multi") (param $a i32) (param $b i32) (result i32 i32)
    (local $q i32)
    (local.get $a) (local.get $b)
    (block (param i32 i32) (result i32 i32)
      (call $divmod))
    ;; swap quotient and remainder through a typed block
    (block (param i32 i32) (result i32 i32)
      (local.set $q)
      (local.set $b)
      (local.get $q) (local.get $b))
    ;; fold three times with a loop that carries two values
    (local.set $q (i32.const 3))
    (loop $fold (param i32 i32) (result i32 i32)
      (local.set $a) (local.set $b)
      (i32.add (local.get $b) (i32.const 7))
      (i32.xor (local.get $a) (local.get $b))
      (br_if $fold (local.tee $q (i32.sub (local.get $q) (i32.const 1))))))

  ;; The benchmark kernel: n iterations of a counting loop.
  (func (export "loop_n") (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $i))
)
