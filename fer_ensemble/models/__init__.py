"""Model zoo: builder modules (one per family), the registry and zoo-file loading."""
from . import baselines, inception, preprocess, resnet, transfer, vgg  # noqa: F401  (register the builders and layers)
from .registry import builder_arguments, create_model, get_builder, list_models, register_model
from .summary import model_depth
from .zoo import ModelSpec, Zoo, load_zoo, zoo_from_dict

__all__ = ["create_model", "list_models", "register_model", "get_builder", "builder_arguments",
           "load_zoo", "zoo_from_dict", "Zoo", "ModelSpec", "model_depth"]
