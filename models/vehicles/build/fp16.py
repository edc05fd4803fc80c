"""fp16 variant for the CUDA provider: the shipped fp32 file computed in float16.

    /usr/bin/python3 models/vehicles/build/fp16.py      # -> models/vehicles/vehicles.fp16.onnx

Every weight, constant and activation is float16, so the CUDA provider runs half-precision
kernels (tensor cores where the GPU has them); the input and output stay float32, with one Cast
each, so the runtime feeds and reads the same tensors as for fp32. On TensorRT the fp32 file
with TensorRT's own fp16 build (or the symmetric int8 file) is the better start.
"""
import os
import sys

HERE = os.path.dirname(__file__)
OUT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import onnx  # noqa: E402
from onnx_util import fp16_compute  # noqa: E402


def main():
    src = os.path.join(OUT, "vehicles.fp32.onnx")
    dst = os.path.join(OUT, "vehicles.fp16.onnx")
    onnx.save(fp16_compute(onnx.load(src)), dst)
    print("wrote", dst)


if __name__ == "__main__":
    main()
