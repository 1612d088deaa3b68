"""Layers beside the model: the CPU fast paths (:mod:`.fast_ops`) and the C++ kernel builder (:mod:`.cpu_kernels`).

Importing builds nothing; the kernels are compiled when a layer that uses them is built.
"""
