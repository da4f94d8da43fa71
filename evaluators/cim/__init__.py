"""The ``cim`` evaluator: DNNs on analog compute-in-memory chips (docs/architecture.md).

Importing the package registers :class:`CimEvaluator` under the name ``cim``
(``evaluators.base`` imports this package on demand).
"""

from evaluators.cim.evaluator import CimEvaluator

__all__ = ["CimEvaluator"]
