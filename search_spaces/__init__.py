"""Search spaces: parameter types, conditional spaces, presets.

Knows nothing of evaluators or the engine; ``dse`` and ``evaluators`` import it.
"""

from search_spaces.expressions import (
    Constraint,
    Expression,
    ExpressionError,
    parse_constraint,
    parse_expression,
)
from search_spaces.params import Categorical, Fixed, Int, Param, Real, expand_vector, infer_stage
from search_spaces.space import SearchSpace

__all__ = [
    "Categorical",
    "Constraint",
    "Expression",
    "ExpressionError",
    "Fixed",
    "Int",
    "Param",
    "Real",
    "SearchSpace",
    "expand_vector",
    "infer_stage",
    "parse_constraint",
    "parse_expression",
]
