"""FFzero (layer-local losses with prototypes, learned from directional derivatives): the rule's contract is
`fixed` (the fixed-point reference, the firmware's layout and checks); `paper` and `paper_cnn` are the
paper-faithful float classes and `zeroth_order` the estimators they share."""

from onward.rules.ffzero.fixed import (
    CONV,
    MICROPYTHON,
    RULE_ID,
    TASKS,
    Fixed,
    Float,
    Options,
    forward_evals,
    init_model,
)

__all__ = ["CONV", "MICROPYTHON", "RULE_ID", "TASKS", "Fixed", "Float", "Options", "forward_evals", "init_model"]
