"""What the CPU can compute fast: instruction-set level and bf16 / int8 support, read at run time.

Also the vendor and model name (the CPU set-up of :mod:`paddlevideo.runtime` and benchmark headers). Used by
``tools/predict.py`` (does ``--precision bf16`` have hardware behind it?) and ``tools/benchmark.py``
(the ISA line of the run header). Flags come from ``/proc/cpuinfo`` (Linux); elsewhere the set is empty and
the OpenVINO runtime's own ``OPTIMIZATION_CAPABILITIES`` decide (:func:`has_bf16`).
"""

import os
import platform

AMD_VENDOR = "AuthenticAMD"
INTEL_VENDOR = "GenuineIntel"
# Flags that give bf16 dot products in hardware: AVX512_BF16 (Cooper Lake, Zen 4+) and AMX tiles
# (Sapphire Rapids+). Without them a bf16 request would be emulated, slower than fp32.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products (VNNI / AMX)
# ISA levels from best to worst, each with the flags that define it.
ISA_LEVELS = (
    ("amx", ("amx_tile", "amx_bf16")),
    ("avx512_bf16", ("avx512f", "avx512_bf16")),
    ("avx512", ("avx512f",)),
    ("avx2", ("avx2", "fma")),
    ("sse4", ("sse4_2",)),
)


def _cpuinfo_field(field, cpuinfo_path="/proc/cpuinfo"):
    """First value of ``field`` in ``/proc/cpuinfo`` (Linux), or ``""`` if unavailable."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, sep, value = line.partition(":")
                if sep and key.strip() == field:
                    return value.strip()
    except OSError:
        pass
    return ""


def cpu_vendor(cpuinfo_path="/proc/cpuinfo"):
    """The CPU vendor string, e.g. ``"GenuineIntel"`` or ``"AuthenticAMD"``; ``""`` if unknown."""
    vendor = _cpuinfo_field("vendor_id", cpuinfo_path)
    if vendor:
        return vendor
    # Non-Linux fallback: platform.processor() names the vendor on Windows ("... AuthenticAMD").
    text = platform.processor() or ""
    for known in (AMD_VENDOR, INTEL_VENDOR):
        if known in text:
            return known
    return ""


def cpu_model_name(cpuinfo_path="/proc/cpuinfo"):
    """Human-readable CPU model (``lscpu``'s "Model name"), or the platform's best guess."""
    return _cpuinfo_field("model name", cpuinfo_path) or platform.processor() or "unknown"


def cpu_flags(cpuinfo_path="/proc/cpuinfo"):
    """The first processor's feature flags (``flags`` line of ``/proc/cpuinfo``) as a set; empty if unknown."""
    return set(_cpuinfo_field("flags", cpuinfo_path).split())


def isa_level(flags):
    """The best of ``amx`` / ``avx512_bf16`` / ``avx512`` / ``avx2`` / ``sse4`` the flags reach, or ``unknown``."""
    for name, needed in ISA_LEVELS:
        if all(flag in flags for flag in needed):
            return name
    return "unknown"


def isa_summary(flags=None):
    """One line for benchmark headers, e.g. ``ISA: avx512_bf16 (bf16: avx512_bf16; int8: avx512_vnni; no amx)``."""
    flags = cpu_flags() if flags is None else flags
    bf16 = [flag for flag in BF16_FLAGS if flag in flags]
    int8 = [flag for flag in INT8_FLAGS if flag in flags]
    amx = [flag for flag in sorted(flags) if flag.startswith("amx")]
    return (f"ISA: {isa_level(flags)} (bf16: {', '.join(bf16) or 'none'}; int8: {', '.join(int8) or 'none'}; "
            f"{'amx: ' + ', '.join(amx) if amx else 'no amx'})")


def has_bf16(flags=None, runtime_capabilities=None):
    """Whether bf16 runs in hardware: an AVX512_BF16 / AMX_BF16 flag, or (no flags readable, e.g. not
    Linux) ``BF16`` among the runtime's ``runtime_capabilities`` (OpenVINO's ``OPTIMIZATION_CAPABILITIES``).

    The flags win when present: OpenVINO also lists BF16 on CPUs where it emulates it.
    """
    flags = cpu_flags() if flags is None else flags
    if flags:
        return any(flag in flags for flag in BF16_FLAGS)
    return bool(runtime_capabilities) and "BF16" in runtime_capabilities


def available_cores():
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
