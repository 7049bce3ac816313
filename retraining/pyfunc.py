"""Where ``FraudModel`` was before the adapters moved (``retraining.adapters.mlflow_pyfunc``).

Models registered until then are pickled with this module path; it stays so that they still
load (``tests/unit/test_model_layout.py`` loads one saved by that layout). New models are
pickled with the new path.
"""

from retraining.adapters.mlflow_pyfunc import FraudModel

__all__ = ["FraudModel"]
