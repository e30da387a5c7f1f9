;; No functions, globals or exports: every added section is new.
(module (memory 1))
