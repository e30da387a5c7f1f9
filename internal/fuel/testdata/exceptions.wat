;; Uses exception handling, which is rejected.
(module
  (tag $e (param i32))
  (func (export "throw") (param i32)
    (throw $e (local.get 0)))
)
