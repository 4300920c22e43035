"""Transition only: the check moved to :mod:`model_core.state_dict_check`.

Kept while ``torch_serving.__main__`` (changed on another branch) still imports from here; delete it once that
import reads ``from model_core.state_dict_check import check_model_folder``.
"""

from model_core.state_dict_check import check_model_folder

__all__ = ["check_model_folder"]
