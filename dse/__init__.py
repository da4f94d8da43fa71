"""cim-dse engine: study files, optimizers, runners, store, Pareto queries, reports.

Python use::

    import dse
    view = dse.run("studies/zdt1.yaml")
    front = dse.load("runs/zdt1").pareto(where="f1 < 0.5")
"""

from dse.api import StudyView, load, resume, run

__all__ = ["StudyView", "load", "resume", "run"]
__version__ = "0.1.0"
