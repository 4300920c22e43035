"""``python -m torch_serving``: log the configuration, check the model, serve."""

from model_core.state_dict_check import check_model_folder
from serving_common.launch import main
from torch_serving import PORT

raise SystemExit(main("torch-serving", "torch_serving.app:app", PORT, ("state_dict",), check_model_folder))
