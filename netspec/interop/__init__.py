"""Trading networks with ONNX: export a built network, import a graph made of netspec's operators.

The `onnx` package (and `onnxruntime`, to run the result) is an extra (`.[onnx]`, or
`pip install 'onnx>=1.16' 'onnxruntime>=1.18'`), imported only here, so that `netspec run` neither needs nor loads it.
"""
