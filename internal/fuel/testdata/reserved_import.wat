;; Imports the fuel global's name, to reach another module's fuel.
(module
  (import "other" "creto_fuel" (global (mut i64)))
)
