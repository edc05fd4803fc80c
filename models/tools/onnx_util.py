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


def inline_constant_identities(model):
    """Points every reader of an Identity of a constant at the constant itself and drops the
    Identity. torch's exporter puts the QuantizeLinear scales and zero points behind Identity
    nodes; TensorRT wants them as constants of the Q/DQ node."""
    graph = model.graph
    consts = _constants(graph)
    rename = {n.output[0]: n.input[0] for n in graph.node if n.op_type == "Identity" and n.input[0] in consts}
    outputs = {o.name for o in graph.output}
    for n in graph.node:
        for i, name in enumerate(n.input):
            while name in rename:
                name = rename[name]
            n.input[i] = name
    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in rename and n.output[0] not in outputs)]
    del graph.node[:]
    graph.node.extend(keep)
    onnx.checker.check_model(model)
    return model


def check_symmetric_qdq(model):
    """Asserts what TensorRT's explicit quantization needs of every QuantizeLinear and
    DequantizeLinear: an int8 zero point, all zeros (symmetric). Returns how many of each."""
    consts = _constants(model.graph)
    counts = {"QuantizeLinear": 0, "DequantizeLinear": 0}
    for n in model.graph.node:
        if n.op_type not in counts:
            continue
        assert len(n.input) == 3, f"{n.name}: no zero point (defaults to uint8)"
        zp = consts.get(n.input[2])
        assert zp is not None, f"{n.name}: zero point {n.input[2]} is not a constant"
        assert zp.dtype == np.int8, f"{n.name}: zero point is {zp.dtype}, not int8"
        assert not zp.any(), f"{n.name}: zero point not 0"
        counts[n.op_type] += 1
    assert counts["QuantizeLinear"] > 0, "no QuantizeLinear at all"
    return counts


def fp16_compute(model):
    """The whole graph in float16, with a Cast at the float32 input and before the float32 output,
    so callers still feed and read float32. Resize's scales stay float32 (the operator's type)."""
    graph = model.graph
    keep32 = {n.input[2] for n in graph.node if n.op_type == "Resize" and len(n.input) > 2}
    inits = []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and init.name not in keep32:
            arr = arr.astype(np.float16)
        inits.append(numpy_helper.from_array(arr, init.name))
    del graph.initializer[:]
    graph.initializer.extend(inits)
    for n in graph.node:
        if n.op_type == "Constant" and n.output[0] not in keep32:
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == onnx.TensorProto.FLOAT:
                    a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float16), a.t.name))
    (inp,) = [i for i in graph.input if i.name not in {x.name for x in graph.initializer}]
    (out,) = graph.output
    half_in, half_out = inp.name + "__fp16", out.name + "__fp16"
    for n in graph.node:
        n.input[:] = [half_in if i == inp.name else i for i in n.input]
        n.output[:] = [half_out if o == out.name else o for o in n.output]
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([helper.make_node("Cast", [inp.name], [half_in], to=onnx.TensorProto.FLOAT16, name="input_to_fp16")]
                      + nodes
                      + [helper.make_node("Cast", [half_out], [out.name], to=onnx.TensorProto.FLOAT, name="output_to_fp32")])
    del graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    onnx.checker.check_model(model)
    return model
