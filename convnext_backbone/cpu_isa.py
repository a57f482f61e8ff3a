"""What the CPU and its math libraries say about the instruction set, read by pure functions.

Every CPU-dependent choice of the package and its tools (the fast path's GEMM library, bf16
autocast, the benchmark's ``--isa`` check, the CPU named in reports) is a function of text the
CPU or a library prints: ``/proc/cpuinfo`` (or ``lscpu``), ATen's
``torch.backends.cpu.get_cpu_capability()``, oneDNN's and MKL's verbose lines, and the caps in
the environment (``ONEDNN_MAX_CPU_ISA``, ``MKL_ENABLE_INSTRUCTIONS``, ``ATEN_CPU_CAPABILITY``).
The functions here take that text and decide; only :func:`read_cpuinfo` reads the real machine.
So the decisions are tested on recorded reports of every kind of CPU (Intel and AMD, AVX2 and
AVX-512, with and without VNNI, BF16 and AMX: ``tests/fixtures/cpu_kinds/``) on any machine.

Where a report says nothing, the answer is ``None`` ("cannot tell here"), never a guess: MKL's
verbose line names the instruction set on Intel CPUs only (on AMD it says "Intel(R)
Architecture processors"), and ``/proc/cpuinfo`` exists on Linux only.
"""
import re
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

AVX512 = 'AVX-512'
AVX2 = 'AVX2'
BELOW_AVX2 = 'below AVX2'
# oneDNN's avx512_core (what its AVX-512 kernels need) and ATen's AVX512 dispatch: F+BW+VL+DQ.
AVX512_CORE_FLAGS = ('avx512f', 'avx512bw', 'avx512vl', 'avx512dq')


class CpuInfo(NamedTuple):
    """The CPU as ``/proc/cpuinfo`` or ``lscpu`` describes it (empty where neither is read)."""
    vendor: str = ''   # 'GenuineIntel', 'AuthenticAMD'
    model: str = ''    # 'AMD EPYC', 'Intel(R) Xeon(R) Platinum 8480+'
    flags: frozenset = frozenset()


_FIELDS = {'vendor_id': 'vendor', 'vendor id': 'vendor', 'model name': 'model',
           'flags': 'flags'}


def parse_cpuinfo(text: str) -> CpuInfo:
    """``/proc/cpuinfo`` (its first processor) or ``lscpu``'s output, into a :class:`CpuInfo`."""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(':')
        field = _FIELDS.get(key.strip().lower())
        if sep and field and field not in found:
            found[field] = value.strip()
    return CpuInfo(found.get('vendor', ''), found.get('model', ''),
                   frozenset(found.get('flags', '').split()))


def read_cpuinfo(path: str = '/proc/cpuinfo') -> CpuInfo:
    """This machine's :class:`CpuInfo` (empty where ``path`` cannot be read: not Linux)."""
    try:
        with open(path) as f:
            return parse_cpuinfo(f.read())
    except OSError:
        return CpuInfo()


def vendor_name(vendor: str) -> str:
    """``GenuineIntel`` -> ``Intel``, ``AuthenticAMD`` -> ``AMD`` (others as they are)."""
    return {'GenuineIntel': 'Intel', 'AuthenticAMD': 'AMD'}.get(vendor, vendor or 'unknown')


# oneDNN's caps (``ONEDNN_MAX_CPU_ISA``, lower case in oneDNN) and the CPU features each lets
# its kernels use (oneDNN's cpu_isa_t bits, by the feature names of :func:`cpu_features`).
# oneDNN ignores a name it does not know: no cap.
_AVX2 = frozenset({'avx2'})
_AVX512 = _AVX2 | {'avx512'}
_AVX10_1 = _AVX512 | {'avx_vnni', 'avx512_vnni', 'avx512_bf16'}
ONEDNN_CAPS: Dict[str, frozenset] = {
    'sse41': frozenset(), 'avx': frozenset(),
    'avx2': _AVX2, 'avx2_vnni': _AVX2 | {'avx_vnni'},
    'avx2_vnni_2': _AVX2 | {'avx_vnni', 'avx_ne_convert'},
    'avx512_core': _AVX512, 'avx512_core_vnni': _AVX512 | {'avx512_vnni'},
    'avx512_core_bf16': _AVX512 | {'avx512_vnni', 'avx512_bf16'},
    'avx512_core_fp16': _AVX10_1, 'avx10_1_512': _AVX10_1,
    'avx512_core_amx': _AVX10_1 | {'amx'}, 'avx10_1_512_amx': _AVX10_1 | {'amx'},
    'avx512_core_amx_fp16': _AVX10_1 | {'amx'}, 'avx10_1_512_amx_fp16': _AVX10_1 | {'amx'},
    'avx10_2': _AVX10_1 | {'avx_ne_convert'}, 'avx10_2_512': _AVX10_1 | {'avx_ne_convert'},
    'avx10_2_amx_2': _AVX10_1 | {'avx_ne_convert', 'amx'},
    'avx10_2_512_amx_2': _AVX10_1 | {'avx_ne_convert', 'amx'},
}


def cpu_features(flags) -> frozenset:
    """The features oneDNN's kernels are chosen by, from the CPU's flags: ``avx2`` (with FMA),
    ``avx512`` (F+BW+VL+DQ), ``avx512_vnni``, ``avx512_bf16``, ``avx_vnni``, ``avx_ne_convert``,
    ``amx`` (tiles with bf16)."""
    found = set()
    if 'avx2' in flags and 'fma' in flags:
        found.add('avx2')
    if 'avx2' in found and all(f in flags for f in AVX512_CORE_FLAGS):
        found.add('avx512')
    found |= {f for f in ('avx512_vnni', 'avx512_bf16', 'avx_vnni', 'avx_ne_convert')
              if f in flags}
    if 'amx_tile' in flags and 'amx_bf16' in flags:
        found.add('amx')
    return frozenset(found)


def cpu_vector_isa(flags) -> Optional[str]:
    """The widest vector ISA the CPU offers the libraries (``AVX-512`` = F+BW+VL+DQ, what
    oneDNN's and ATen's AVX-512 kernels need; ``AVX2`` with FMA); ``None`` without flags
    (cannot tell)."""
    return isa_of(cpu_features(flags)) if flags else None


def isa_of(features) -> str:
    """``AVX-512``, ``AVX2`` or ``below AVX2`` for a set of :func:`cpu_features`."""
    return AVX512 if 'avx512' in features else AVX2 if 'avx2' in features else BELOW_AVX2


def cpu_extensions(flags) -> List[str]:
    """The extensions that change int8 and bf16 kernels: VNNI (AVX-512 VNNI or AVX-VNNI),
    BF16 (AVX512-BF16), AMX (tiles with bf16)."""
    features = cpu_features(flags)
    return [name for name, keys in (('VNNI', ('avx512_vnni', 'avx_vnni')),
                                    ('BF16', ('avx512_bf16',)), ('AMX', ('amx',)))
            if any(k in features for k in keys)]


def describe_cpu(info: CpuInfo) -> str:
    """One line for reports: model, vendor, vector ISA and extensions, e.g.
    ``AMD EPYC (AMD; AVX-512 with VNNI, BF16)``; says what it cannot tell."""
    isa = cpu_vector_isa(info.flags)
    if isa is None:
        return f'{info.model or "unknown CPU"} (CPU flags not readable here)'
    extra = cpu_extensions(info.flags)
    isa += f' with {", ".join(extra)}' if extra else ''
    return f'{info.model or "unknown model"} ({vendor_name(info.vendor)}; {isa})'


# ------------------------------------------------------------------ ATen
def aten_isa(capability: str) -> Optional[str]:
    """``torch.backends.cpu.get_cpu_capability()`` (``AVX512``, ``AVX2``, ``DEFAULT``, ``NO
    AVX``; other architectures: ``ZVECTOR``, ``SVE256``, ...) as an x86 ISA; ``None`` for
    other architectures' names."""
    name = capability.upper()
    if name.startswith('AVX512'):
        return AVX512
    if name.startswith('AVX2'):
        return AVX2
    return BELOW_AVX2 if name in ('DEFAULT', 'NO AVX') else None


# ------------------------------------------------------------------ oneDNN
def onednn_isa_line(verbose: str) -> Optional[str]:
    """oneDNN's ``cpu,isa:...`` header (printed once per process, the first time verbose
    output is on), e.g. ``Intel AVX-512 with Intel DL Boost and bfloat16 support``."""
    found = re.search(r'cpu,isa:([^\n]*)', verbose)
    return found.group(1).strip() if found else None


def onednn_kernels(verbose: str) -> List[Tuple[str, str]]:
    """(primitive, implementation) of each executed primitive, e.g. ``('inner_product',
    'brg_matmul:avx512_core')``."""
    return re.findall(r'primitive,exec,cpu,(\w+),([^,]+),', verbose)


def kernel_isa(implementation: str) -> Optional[str]:
    """The ISA an implementation name was generated for (``brg_matmul:avx2`` -> AVX2,
    ``brdgmm_dw:avx512_core`` / ``brg_matmul:avx10_1_512_amx`` -> AVX-512); ``None`` for
    names that carry none (``jit:uni``, ``ref:any``, ``gemm:jit``)."""
    isa = implementation.rpartition(':')[2].lower()
    if isa.startswith(('avx512', 'avx10')):
        return AVX512
    if isa.startswith('avx2'):
        return AVX2
    if isa in ('sse41', 'avx'):
        return BELOW_AVX2
    return None


def _isa_of_name(name: str) -> str:
    """oneDNN's ISA description (``Intel AVX2``, ``Intel AVX10.1/512 ...``) as an ISA."""
    if 'AVX-512' in name or 'AVX10' in name:
        return AVX512
    return AVX2 if 'AVX2' in name else BELOW_AVX2


def onednn_isa(verbose: str) -> Optional[str]:
    """The ISA oneDNN runs, from its header line or, where the header was printed earlier in
    the process, from the kernels it ran; ``None`` where the output shows neither."""
    line = onednn_isa_line(verbose)
    if line:
        return _isa_of_name(line)
    kernels = {kernel_isa(impl) for _, impl in onednn_kernels(verbose)} - {None}
    for isa in (AVX512, AVX2, BELOW_AVX2):
        if isa in kernels:
            return isa
    return None


def onednn_extensions(line: Optional[str]) -> List[str]:
    """VNNI / BF16 / AMX, as oneDNN's header names them ("Intel DL Boost", "bfloat16", "AMX")."""
    if not line:
        return []
    return [name for name, word in (('VNNI', 'DL Boost'), ('BF16', 'bfloat16'), ('AMX', 'AMX'))
            if word in line]


def onednn_cap(env: Mapping[str, str]) -> Optional[str]:
    """The cap ``ONEDNN_MAX_CPU_ISA`` (or the older ``DNNL_MAX_CPU_ISA``) sets, as oneDNN reads
    it (lower case); ``None``: no cap (unset, ``ALL``, ``DEFAULT``, or a name oneDNN does not
    know and ignores)."""
    cap = env.get('ONEDNN_MAX_CPU_ISA', env.get('DNNL_MAX_CPU_ISA', '')).strip().lower()
    return cap if cap in ONEDNN_CAPS else None


def onednn_features(flags, env: Mapping[str, str]) -> Optional[frozenset]:
    """The features oneDNN's kernels use here: the CPU's, within the cap in ``env`` (oneDNN
    reads it once, when it first runs: the process's environment at start); ``None`` where
    the CPU's flags cannot be read."""
    if not flags:
        return None
    features = cpu_features(flags)
    cap = onednn_cap(env)
    return features if cap is None else features & ONEDNN_CAPS[cap]


def onednn_below_avx512(flags, aten_capability: str, env: Mapping[str, str]) -> bool:
    """oneDNN runs without AVX-512: a cap in ``env`` below it, or a CPU without AVX-512
    F+BW+VL+DQ (oneDNN's avx512_core test). Where the CPU's flags cannot be read, ATen's
    capability stands in for the CPU (ATen tests the same features)."""
    features = onednn_features(flags, env)
    if features is not None:
        return 'avx512' not in features
    cap = onednn_cap(env)
    if cap is not None and 'avx512' not in ONEDNN_CAPS[cap]:
        return True
    return aten_isa(aten_capability) != AVX512


def bf16_support(flags, env: Mapping[str, str]) -> Optional[str]:
    """How oneDNN runs bf16 matmuls and convolutions here (torch's
    ``_is_mkldnn_bf16_supported`` asks oneDNN for AVX-512 or AVX2 with AVX-NE-CONVERT):
    ``'AMX'``, ``'native'`` (AVX512-BF16 instructions), ``'converted'`` (AVX-512 or
    AVX-NE-CONVERT convert to and from bf16 around fp32 arithmetic), or ``''`` (no bf16
    kernels: an AVX2 CPU, or oneDNN capped below AVX-512); ``None`` where the CPU's flags
    cannot be read."""
    features = onednn_features(flags, env)
    if features is None:
        return None
    if 'avx512' in features and 'amx' in features:
        return 'AMX'
    if 'avx512' in features and 'avx512_bf16' in features:
        return 'native'
    return 'converted' if {'avx512', 'avx_ne_convert'} & features else ''


def bf16_absent_because(flags, env: Mapping[str, str]) -> str:
    """Why oneDNN has no bf16 kernels here (for a message; call where it has none)."""
    if not flags:
        return "the CPU's flags cannot be read here to say why"
    cap = onednn_cap(env)
    if cap is not None and bf16_support(flags, {}):
        return (f'ONEDNN_MAX_CPU_ISA={cap.upper()} caps oneDNN below its bf16 kernels; '
                'unset it to use them')
    return ('oneDNN runs bf16 from AVX-512 (F/BW/VL/DQ) or AVX2 with AVX-NE-CONVERT up; this '
            f'CPU has {isa_of(cpu_features(flags))} without AVX-NE-CONVERT')


# ------------------------------------------------------------------ MKL
def mkl_processor(verbose: str) -> Optional[str]:
    """The processor part of MKL's version line (``MKL_VERBOSE oneMKL 2024.0 ... for Intel(R)
    64 architecture <this>, Lnx 2.60GHz lp64 gnu_thread``), e.g. ``Intel(R) Advanced Vector
    Extensions 2 (Intel(R) AVX2) enabled processors`` or, on AMD, ``Intel(R) Architecture
    processors``; ``None`` without a version line."""
    found = re.search(r'architecture (.*?), (?:Lnx|Win|OSX) ', verbose)
    return found.group(1).strip() if found else None


def mkl_isa(verbose: str) -> Optional[str]:
    """The ISA MKL says it runs (``AVX-512``, ``AVX2``, ``below AVX2``); ``None`` where its
    line names none (every non-Intel CPU: "Intel(R) Architecture processors") or is missing:
    then what MKL runs cannot be told from MKL."""
    text = mkl_processor(verbose)
    if not text:
        return None
    if 'AVX-512' in text or 'Extensions 512' in text:
        return AVX512
    if 'AVX2' in text:
        return AVX2
    return BELOW_AVX2 if re.search(r'\b(AVX|SSE[\d.]*)\b', text) else None
