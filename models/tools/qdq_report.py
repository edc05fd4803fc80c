"""Every QuantizeLinear/DequantizeLinear of an ONNX file as JSON, for test/int8Qdq.test.ts.

    /usr/bin/python3 models/tools/qdq_report.py models/vehicles/vehicles.int8_sym.onnx

Per node: op, name, whether its input is a stored constant (a weight), the zero point's type,
whether every zero point is 0, the scale's element count, the axis, and the op types reading it.
"""
import json
import sys

import numpy as np
import onnx

sys.path.insert(0, __import__("os").path.dirname(__file__))
from onnx_util import _constants  # noqa: E402

TYPES = {np.dtype(np.int8): "int8", np.dtype(np.uint8): "uint8"}


def report(path):
    model = onnx.load(path)
    g = model.graph
    consts = _constants(g)
    # follow Identity of a constant, as the exporter sometimes writes it
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in consts:
            consts[n.output[0]] = consts[n.input[0]]
    readers = {}
    for n in g.node:
        for i in n.input:
            readers.setdefault(i, []).append(n.op_type)
    out = []
    for n in g.node:
        if n.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        zp = consts.get(n.input[2]) if len(n.input) > 2 else None
        scale = consts.get(n.input[1])
        axis = next((a.i for a in n.attribute if a.name == "axis"), None)
        out.append({
            "op": n.op_type,
            "name": n.name,
            "constant_input": n.input[0] in consts,
            "zero_point_type": TYPES.get(zp.dtype, str(zp.dtype)) if zp is not None else None,
            "zero_points_all_zero": bool(zp is not None and not zp.any()),
            "scale_elements": int(scale.size) if scale is not None else None,
            "axis": axis,
            "readers": sorted(set(readers.get(n.output[0], []))),
        })
    return out


if __name__ == "__main__":
    print(json.dumps({p: report(p) for p in sys.argv[1:]}))
