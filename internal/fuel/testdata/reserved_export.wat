;; Exports the fuel global's name, as an instrumented module would.
(module
  (global (export "creto_fuel") (mut i64) (i64.const 0))
)
