"""Small ONNX helpers shared by the model builds (Debian python3-onnx 1.12)."""
import hashlib

import numpy as np
import onnx
from onnx import helper, numpy_helper


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fp16_weights(model, min_elements=16):
    """Store float32 initializers as float16 plus a Cast back to float32.

    Graph inputs, outputs and compute stay float32; only the stored weights shrink.
    """
    graph = model.graph
    keep, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype != np.float32 or arr.size < min_elements:
            keep.append(init)
            continue
        half_name = init.name + "__fp16"
        keep.append(numpy_helper.from_array(arr.astype(np.float16), half_name))
        casts.append(helper.make_node("Cast", [half_name], [init.name], to=onnx.TensorProto.FLOAT, name=init.name + "__cast"))
    del graph.initializer[:]
    graph.initializer.extend(keep)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    return model


def _constants(graph):
    """name -> numpy array for initializers and Constant node outputs."""
    c = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for n in graph.node:
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value":
                    c[n.output[0]] = numpy_helper.to_array(a.t)
    return c


def fold_weight_quantization(model):
    """Stores quantized weights as int8 initializers feeding their DequantizeLinear directly.

    torch's exporter writes each fake-quantized weight as float initializer -> QuantizeLinear ->
    DequantizeLinear, with scales behind Identity nodes. onnxruntime does not constant-fold
    QuantizeLinear, so it cannot see a constant int8 weight and falls back to float Conv; with
    the weight pre-quantized here (round half to even, as ONNX specifies) every DQ->Conv->Q
    becomes one QLinearConv. The numbers are unchanged.
    """
    graph = model.graph
    consts = _constants(graph)
    # Identity of a constant: point consumers at the constant itself
    rename = {}
    for n in graph.node:
        if n.op_type == "Identity" and n.input[0] in consts:
            rename[n.output[0]] = n.input[0]
    for n in graph.node:
        for i, name in enumerate(n.input):
            while name in rename:
                name = rename[name]
            n.input[i] = name
    for o in graph.output:
        assert o.name not in rename
    new_inits, drop = [], set()
    for k, n in enumerate(graph.node):
        if n.op_type == "Identity" and n.output[0] in rename:
            drop.add(k)
        if n.op_type != "QuantizeLinear" or n.input[0] not in consts or n.input[0] in (i.name for i in graph.input):
            continue
        x = consts[n.input[0]].astype(np.float64)
        scale = consts[n.input[1]].astype(np.float64)
        zp = consts[n.input[2]] if len(n.input) > 2 else np.zeros((), np.uint8)
        axis = next((a.i for a in n.attribute if a.name == "axis"), 1)
        if scale.ndim == 1:
            shape = [1] * x.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zpb = zp.astype(np.int64).reshape(shape)
        else:
            zpb = zp.astype(np.int64)
        lo, hi = (-128, 127) if zp.dtype == np.int8 else (0, 255)
        q = np.clip(np.round(x / scale) + zpb, lo, hi).astype(zp.dtype)
        new_inits.append(numpy_helper.from_array(q, n.output[0]))
        drop.add(k)
    keep = [n for k, n in enumerate(graph.node) if k not in drop]
    del graph.node[:]
    graph.node.extend(keep)
    graph.initializer.extend(new_inits)
    # drop initializers and Constant nodes nobody reads any more
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)
    keep = [n for n in graph.node if n.op_type != "Constant" or n.output[0] in used]
    del graph.node[:]
    graph.node.extend(keep)
    onnx.checker.check_model(model)
    return model
