"""Trading networks with ONNX: export a built network, import a graph made of netspec's operators.

The `onnx` package (and `onnxruntime`, to run the result) is an extra, `pip install 'netspec[onnx]'`,
imported only here, so that `netspec run` neither needs nor loads it.
"""
