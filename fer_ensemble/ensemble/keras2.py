"""Models from elsewhere as Keras 3 models, without running any of their code.

`fer-ensemble import` reads three kinds of file:

- `.keras` (Keras 3) and `.h5` / `.hdf5` full models, loaded by Keras in safe mode; a legacy
  `.h5` that Keras 3 cannot load is rebuilt from its `model_config` by the converter below, with
  the weights of the same file;
- a Keras-2 architecture `.json` (`model.to_json()`) with a weights file (`save_weights`, `.h5`).

`convert_config` turns a Keras-2 config into a Keras 3 one: `Sequential` / `Model` / `Functional`
class names, `batch_input_shape` / `input_shape` / `input_dim` into an `InputLayer`'s
`batch_shape`, a list-valued `axis` of BatchNormalization into an integer, renamed arguments
(`alpha` of LeakyReLU is `negative_slope`), mixed-precision policies into float32. Initializers,
regularizers and constraints are dropped: the weights come from the file, and none of them acts at
inference. Every layer must be a built-in Keras layer: `Lambda`, `TFOpLambda` (Python or TensorFlow
code inside the model) and custom classes are refused, and so is any argument Keras 3 has no
equivalent for; the error names the file, the layer and the key. Nothing is deserialized before the
whole config has been checked, and Keras builds the result in safe mode.

`single_io` makes a model whose call returns a one-element list (Keras-2 functional models loaded
by Keras 3 keep their `[[name, 0, 0]]` output lists) return the tensor itself.
"""
from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path

from .. import _tf  # noqa: F401
from ..errors import EnsembleError

# Layers that hold Python or TensorFlow code: never deserialized.
CODE_LAYERS = ("Lambda", "TFOpLambda", "SlicingOpLambda", "TFSMLayer")
MODEL_CLASSES = ("Sequential", "Model", "Functional")
# Keras-2 names of arguments that Keras 3 renamed: (layer class or "*", old) -> new.
RENAMED = {("LeakyReLU", "alpha"): "negative_slope"}
# Arguments with no effect at inference (the weights come from the file): dropped.
_TRAINING_ONLY = re.compile(r"^(\w+_)?(initializer|regularizer|constraint)$")
# Keras-2 arguments Keras 3 no longer has, harmless when they hold these values.
_OBSOLETE = {"fused": None, "virtual_batch_size": (None,), "adjustment": (None,), "sparse": (False, None),
             "ragged": (False, None), "optional": (False,)}
_INPUT_KEYS = ("batch_input_shape", "input_shape", "input_dim", "batch_size")


def _layer_class(name: str):
    import keras

    cls = getattr(keras.layers, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, keras.layers.Layer) else None


def _accepted(cls) -> set[str]:
    """Keyword arguments the Keras 3 class takes (its own and its bases' up to Layer)."""
    import keras

    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names.update(p for p, v in inspect.signature(klass.__init__).parameters.items()
                         if v.kind not in (v.VAR_KEYWORD, v.VAR_POSITIONAL) and p != "self")
        if klass is keras.layers.Layer:
            break
    return names


class _Converter:
    """One conversion: `where` (the file) prefixes every error."""

    def __init__(self, where: str, input_size: int | None):
        self.where = where
        self.input_size = input_size

    def fail(self, layer: str, key: str, why: str) -> EnsembleError:
        return EnsembleError(f"{self.where}: layer {layer!r}, key {key!r}: {why}")

    # ------------------------------------------------------------------ models
    def model(self, doc: dict, name: str = "model") -> dict:
        if not isinstance(doc, dict) or "class_name" not in doc:
            raise self.fail(name, "class_name", "not a Keras model config (expected {'class_name': ..., "
                                                "'config': ...})")
        cls = doc["class_name"]
        if cls == "Sequential":
            return self.sequential(doc.get("config"), name)
        if cls in ("Model", "Functional"):
            return self.functional(doc.get("config"), name)
        raise self.fail(name, "class_name", f"{cls!r} is not a model class ({', '.join(MODEL_CLASSES)})")

    def sequential(self, config, name: str) -> dict:
        if isinstance(config, list):          # Keras <= 2.2: the config is the list of layers
            config = {"name": name, "layers": config}
        if not isinstance(config, dict) or not isinstance(config.get("layers"), list) or not config["layers"]:
            raise self.fail(name, "layers", "a Sequential config needs a non-empty list of layers")
        layers = [self.layer(spec, f"{name}.layers[{i}]") for i, spec in enumerate(config["layers"])]
        shape = self._input_shape(config["layers"][0], config.get("build_input_shape"))
        if layers[0]["class_name"] != "InputLayer":
            if shape is None:
                if not self.input_size:
                    raise self.fail(config["layers"][0].get("config", {}).get("name", name), "batch_input_shape",
                                    "the first layer has no input shape; pass --input-size")
                shape = [None, self.input_size, self.input_size, 1]
            layers.insert(0, _serialized("InputLayer", {"batch_shape": shape, "dtype": "float32",
                                                       "name": f"{config.get('name', name)}_input"}))
        return _serialized("Sequential", {"name": config.get("name", name), "trainable": True, "layers": layers},
                           module="keras")

    def functional(self, config, name: str) -> dict:
        if not isinstance(config, dict) or not all(k in config for k in ("layers", "input_layers", "output_layers")):
            raise self.fail(name, "layers", "a functional config needs 'layers', 'input_layers' and 'output_layers'")
        layers = []
        for i, spec in enumerate(config["layers"]):
            if not isinstance(spec, dict) or "name" not in spec:
                raise self.fail(f"{name}.layers[{i}]", "name", "a functional model's layer needs a name")
            out = self.layer(spec, spec["name"])
            nodes = spec.get("inbound_nodes", [])
            if not isinstance(nodes, list) or any(not isinstance(n, list) for n in nodes):
                raise self.fail(spec["name"], "inbound_nodes", "expected Keras-2 node lists [[name, node, tensor, {}]]")
            for node in nodes:
                for inbound in node:
                    if not (isinstance(inbound, list) and len(inbound) in (3, 4)) or (len(inbound) == 4 and inbound[3]):
                        raise self.fail(spec["name"], "inbound_nodes",
                                        f"node {inbound!r} passes call arguments, which Keras 3 cannot rebuild")
            layers.append({**out, "name": spec["name"], "inbound_nodes": nodes})
        return _serialized("Model", {"name": config.get("name", name), "trainable": True, "layers": layers,
                                          "input_layers": _unwrap(config["input_layers"]),
                                          "output_layers": _unwrap(config["output_layers"])}, module="keras")

    # ------------------------------------------------------------------ layers
    def layer(self, spec: dict, where: str) -> dict:
        if not isinstance(spec, dict) or "class_name" not in spec:
            raise self.fail(where, "class_name", "not a layer config")
        cls_name, config = spec["class_name"], dict(spec.get("config") or {})
        name = config.get("name", spec.get("name", where))
        if cls_name in CODE_LAYERS:
            raise self.fail(name, "class_name", f"a {cls_name} layer holds Python/TensorFlow code, which import never "
                                                "runs; rebuild the model without it (or with a built-in layer)")
        if cls_name in MODEL_CLASSES:                      # a nested model
            return self.model({"class_name": cls_name, "config": spec.get("config")}, name)
        module, registered = spec.get("module"), spec.get("registered_name")
        cls = _layer_class(cls_name)
        if cls is None or (module and str(module).split(".")[0] != "keras") or (registered and registered != cls_name):
            raise self.fail(name, "class_name", f"{registered or cls_name!r} is not a built-in Keras layer; custom "
                                                "objects are not imported (no code from the model is run)")
        accepted = _accepted(cls)
        out = {}
        for key, value in config.items():
            new_key = RENAMED.get((cls_name, key), RENAMED.get(("*", key), key))
            if key in _INPUT_KEYS:
                continue                                    # becomes the InputLayer's batch_shape
            if _TRAINING_ONLY.match(key) or key == "activity_regularizer":
                continue
            if key == "dtype":
                out["dtype"] = _dtype(value)
                continue
            if key == "axis" and cls_name == "BatchNormalization" and isinstance(value, list):
                if len(value) != 1:
                    raise self.fail(name, key, f"axis {value} (several axes) has no Keras 3 equivalent")
                value = value[0]
            if key == "activation" and not self._activation(value):
                raise self.fail(name, key, f"activation {value!r} is not a built-in Keras activation")
            if key in ("renorm", "synchronized") and value:
                raise self.fail(name, key, f"{key}={value!r} is not supported")
            if new_key in accepted:
                out[new_key] = value
            elif key in _OBSOLETE and (_OBSOLETE[key] is None or value in _OBSOLETE[key]):
                continue
            else:
                raise self.fail(name, key, f"{cls_name} in Keras 3 has no argument {key!r} (value {value!r})")
        if cls_name == "InputLayer":
            shape = self._input_shape(spec, None)
            if shape is None:
                raise self.fail(name, "batch_input_shape", "an InputLayer needs its shape")
            out["batch_shape"] = shape
        return _serialized(cls.__name__, out)

    @staticmethod
    def _activation(value) -> bool:
        import keras

        if not isinstance(value, str):
            return False
        try:
            keras.activations.get(value)
        except Exception:
            return False
        return True

    @staticmethod
    def _input_shape(spec: dict, build_shape) -> list | None:
        config = spec.get("config", {}) if isinstance(spec, dict) else {}
        for key in ("batch_input_shape", "batch_shape"):
            if config.get(key):
                return list(config[key])
        if config.get("input_shape"):
            return [None, *config["input_shape"]]
        if config.get("input_dim"):
            return [None, config["input_dim"]]
        return list(build_shape) if build_shape else None


def _dtype(value) -> str:
    """A dtype or Keras-2 policy -> the float32 / float64 name a member computes in."""
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name", "float32")
    return value if value in ("float32", "float64") else "float32"


def _unwrap(tensors):
    """[[name, 0, 0]] -> [name, 0, 0]: one input or output is a tensor, not a list of one."""
    return tensors[0] if _list_of_one(tensors) else tensors


def _serialized(cls_name: str, config: dict, module: str = "keras.layers") -> dict:
    return {"module": module, "class_name": cls_name, "config": config, "registered_name": None}


def convert_config(doc: dict, where: str | os.PathLike, input_size: int | None = None) -> dict:
    """A Keras-2 model config (`to_json()`'s document, or an `.h5` file's `model_config`) as a
    Keras 3 serialized model; EnsembleError naming `where`, the layer and the key where it cannot be."""
    return _Converter(str(where), input_size).model(doc)


def check_no_code(doc, where: str | os.PathLike) -> None:
    """EnsembleError naming the layer if a model config holds a Lambda-like layer (any format)."""
    if isinstance(doc, dict):
        if doc.get("class_name") in CODE_LAYERS:
            name = (doc.get("config") or {}).get("name", doc.get("name", "?"))
            raise EnsembleError(f"{where}: layer {name!r}, key 'class_name': a {doc['class_name']} layer holds "
                                "Python/TensorFlow code, which import never runs; rebuild the model without it")
        for v in doc.values():
            check_no_code(v, where)
    elif isinstance(doc, list):
        for v in doc:
            check_no_code(v, where)


def build(doc: dict, where: str | os.PathLike):
    """A converted config (`convert_config`) as a Keras model, built in safe mode."""
    import keras

    try:
        return keras.saving.deserialize_keras_object(doc, safe_mode=True)
    except Exception as e:
        raise EnsembleError(f"{where}: the converted model cannot be built ({e.__class__.__name__}: "
                            f"{str(e)[:300]})") from None


def load_keras2_json(path: Path, weights: Path, input_size: int | None = None):
    """A Keras-2 architecture `.json` and its weights file as a Keras 3 model."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise EnsembleError(f"{path}: not a readable model JSON ({e})") from None
    model = build(convert_config(doc, path, input_size), path)
    load_legacy_weights(model, weights, path)
    return model


def load_legacy_weights(model, weights: Path, architecture: Path) -> None:
    """Weights saved by Keras 2 (`save_weights` to .h5, or a full model's `model_weights`, matched
    by layer order; or the `.weights.h5` layout of tf.keras 2.13+ and Keras 3)."""
    import tempfile

    import h5py

    if not weights.is_file():
        raise EnsembleError(f"{weights}: no such weights file")
    try:
        with h5py.File(weights, "r") as f:
            legacy = "layer_names" in f.attrs or "model_weights" in f
    except OSError as e:
        raise EnsembleError(f"{weights}: not a readable HDF5 weights file ({e})") from None
    try:     # Keras picks the format from the file name: give it the name of the layout found
        with tempfile.TemporaryDirectory() as d:
            link = Path(d) / ("legacy.h5" if legacy else "model.weights.h5")
            link.symlink_to(weights.resolve())
            model.load_weights(link)
    except Exception as e:
        raise EnsembleError(f"{weights}: these weights do not fit {architecture.name} ({e.__class__.__name__}: "
                            f"{str(e)[:300]})") from None


def h5_model_config(path: Path) -> dict | None:
    """The `model_config` of a legacy `.h5` full model; None for a weights-only file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("model_config")
    except OSError as e:
        raise EnsembleError(f"{path}: not a readable HDF5 file ({e})") from None
    if raw is None:
        return None
    return json.loads(raw.decode("utf-8") if hasattr(raw, "decode") else raw)


def single_io(model):
    """`model`, or a functional model on its tensors whose call returns one tensor (not a
    one-element list) for one input tensor; Keras-2 functional models keep their list structures."""
    import keras

    if len(model.inputs) == 1 and len(model.outputs) == 1 and type(model).__name__ == "Functional":
        config = model.get_config()
        if any(_list_of_one(config.get(k)) for k in ("input_layers", "output_layers")):
            return keras.Model(model.inputs[0], model.outputs[0], name=model.name)
    return model


def _list_of_one(tensors) -> bool:
    return isinstance(tensors, list) and len(tensors) == 1 and isinstance(tensors[0], list)
