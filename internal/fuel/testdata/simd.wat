;; Uses SIMD, which is rejected.
(module
  (func (export "splat") (result i32)
    (i32x4.extract_lane 2 (i32x4.splat (i32.const 7))))
)
