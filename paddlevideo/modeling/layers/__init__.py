"""Layers beside the model: the CPU fast paths (:mod:`.fast_ops`) and the C++ kernel builder (:mod:`.cpu_kernels`).

Importing builds nothing; the kernels are compiled on first use.
"""
