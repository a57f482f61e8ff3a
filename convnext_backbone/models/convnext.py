"""The ConvNeXt (V1 and V2) backbone for mmdet 3.x / mmsegmentation 1.x.

Reads top-down in build order: arguments are validated, the stem and downsample layers, stages
and output norms are built with the official module names (so official detection/segmentation
checkpoints load as they are), then the forward pass, freezing, and the layer-depth answer that the
layer-decay optimizer constructor uses. Nothing here imports mmdet or mmseg: the class is
registered in this package's own registry, reachable from either host's scope as
``convnext_backbone.ConvNeXt``.

Every mistake in the backbone's arguments (an unknown or misspelt argument, a bad arch,
out_indices, frozen_stages...) is one :class:`ConvNeXtConfigError`, and an input it cannot take
is one :class:`ConvNeXtInputError`: our tools print either as one ``error:`` line. Both are
``ValueError`` (a misspelt argument is also a ``TypeError``, as Python's own would be). mmengine's
registry re-raises build errors as ``type(e)(f'class ...: {e}')``, which keeps the class.
"""
import difflib
import inspect
import math
import re
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.utils.checkpoint as cp
from mmengine.model import BaseModule
from torch import nn

from ..registry import MODELS
from .archs import ArchSpec, resolve_arch
from .block import ConvNeXtBlock
from .layers import LayerNorm2d, SamePaddedConv2d

DECAY_TYPES = ('layer_wise', 'stage_wise')


class ConvNeXtConfigError(ValueError):
    """A ConvNeXt argument from a config (or a call) that cannot work; the text says the fix."""


class ConvNeXtArgumentError(ConvNeXtConfigError, TypeError):
    """An argument ConvNeXt does not take (usually a misspelling); names the closest one."""


class ConvNeXtInputError(ValueError):
    """An input tensor the backbone cannot take (rank, channels, size); the text says the fix."""


_PARAM_RE = re.compile(r'^(downsample_layers|stages)\.(\d+)(?:\.(\d+))?\.')


def _normalize_out_indices(out_indices, num_stages: int) -> Tuple[int, ...]:
    """Ints (negative allowed) -> sorted tuple of stage indices; clear errors otherwise."""
    idx = (out_indices,) if isinstance(out_indices, int) else tuple(out_indices)
    valid = f'[{-num_stages}, {num_stages - 1}]'
    if not idx or any(isinstance(i, bool) or not isinstance(i, int) for i in idx):
        raise ConvNeXtConfigError(
            f'ConvNeXt out_indices must be an int or a non-empty sequence of ints '
            f'in {valid}, got {out_indices!r}.')
    bad = [i for i in idx if not -num_stages <= i < num_stages]
    if bad:
        raise ConvNeXtConfigError(
            f'ConvNeXt out_indices {list(idx)} has {bad} out of range: this arch has '
            f'{num_stages} stages, so valid indices are {valid}.')
    pos = [i % num_stages for i in idx]
    if len(set(pos)) != len(pos):
        raise ConvNeXtConfigError(f'ConvNeXt out_indices {list(idx)} name the same stage twice '
                                  f'(as stage indices: {pos}).')
    return tuple(sorted(pos))


def native_output_strides(num_stages: int) -> Tuple[int, ...]:
    """The ``output_stride`` values an arch of ``num_stages`` stages takes: the strides of its
    stages 1 .. last (8, 16, 32 for the four-stage archs); the last is the undilated network."""
    return tuple(4 * 2 ** i for i in range(1, num_stages))


def stage_dilations(num_stages: int, output_stride: int) -> Tuple[Tuple[int, int], ...]:
    """``(downsample dilation, block dilation)`` of every stage for ``output_stride``; a
    downsample dilation of 0 means the ordinary 2x2 stride-2 downsampling.

    A stage whose stride would exceed ``output_stride`` keeps its input's resolution: its 2x2
    downsample convolution runs with stride 1, dilated by the dilation of the features it reads
    (the pixels it combined are that far apart now), and its blocks' 7x7 depthwise convolutions
    by twice that. For the four-stage archs this is timm's ``ConvNeXt(output_stride=...)``:
    16 dilates stage 3 (blocks by 2, downsample by 1), 8 dilates stages 2 and 3 (blocks by 2 and
    4, downsample convolutions by 1 and 2).
    """
    plan, stride, dilation = [(0, 1)], 4, 1
    for _ in range(1, num_stages):
        if stride * 2 > output_stride:
            plan.append((dilation, dilation * 2))
            dilation *= 2
        else:
            stride *= 2
            plan.append((0, 1))
    return tuple(plan)


def _unknown_arguments_message(unknown: dict) -> str:
    """``drop_path=0.1`` -> "... Did you mean drop_path_rate?" from ConvNeXt's own signature."""
    known = [name for name in inspect.signature(ConvNeXt.__init__).parameters
             if name not in ('self', 'unknown')]
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        if not close:
            close = [k for k in known if k.startswith(name) or name.startswith(k)][:1]
        parts.append(f'{name!r}' + (f' (did you mean {close[0]!r}?)' if close else ''))
    return (f'ConvNeXt got unknown argument(s) {", ".join(parts)}: fix the name in the backbone '
            f'config (model.backbone). ConvNeXt takes: {", ".join(known)}.')


@MODELS.register_module()
class ConvNeXt(BaseModule):
    """ConvNeXt (V1) / ConvNeXt-V2 backbone returning multi-scale features.

    Args:
        arch: a qualified name (``'v1-tiny'`` ... ``'v1-xlarge'``, ``'v2-atto'`` ... ``'v2-huge'``)
            or ``dict(depths=[...], channels=[...], grn=False)``; see ``models.archs``.
        in_channels: channels of the input image.
        out_indices: stages whose features are returned (int or sequence; negative counts from
            the end). Outputs come in stage order, each through its own LayerNorm ``norm{i}``.
        drop_path_rate: stochastic depth rate, linear from 0 to this over all blocks.
        layer_scale_init_value: initial layer-scale value; ``None`` means the arch's default
            (1e-6 for V1, none for V2); ``0`` turns layer scale off.
        frozen_stages: -1 freezes nothing; 0 the stem; k >= 1 the stem, stages 0..k-1 and their
            downsample layers (``requires_grad=False``, kept in eval mode through ``train()``).
            The output norms stay trainable.
        with_cp: gradient checkpointing per block (saves memory; same outputs and gradients).
        fast_path: the blocks' fused computations (layer scale folded into ``pwconv2``,
            residual add inside its GEMM, oneDNN GEMM+GELU / GEMM+add kernels at inference, a
            faster depthwise weight gradient on CPU); same outputs and gradients to float
            rounding. ``False`` computes the official block op by op (see ``ConvNeXtBlock``).
        init_cfg: mmengine init config. ``dict(type='Pretrained', checkpoint=PATH, prefix=None)``
            loads through ``convnext_backbone.checkpoint.load_pretrained``, which converts
            official/timm/mmpretrain/FCMAE checkpoints and fails loudly on a mismatch.
        output_stride: (keyword only) stride of the last stage's output: 32 (default for the
            four-stage archs: the network as published), 16 or 8 (the last one or two stages
            keep the resolution of the stage before: stride-1 downsampling and dilated
            depthwise convolutions, as DeepLab-style heads want). Same parameters, so every
            checkpoint loads unchanged; ``out_strides`` reports the strides. See
            :func:`stage_dilations`.

    ``forward`` returns a tuple of NCHW feature maps, strides ``out_strides`` and channels
    ``out_channels``, in the standard (contiguous) memory format: the stages run channels-last
    inside, but mmcv's CPU RoIAlign reads its input as NCHW-contiguous memory and silently returns
    wrong features for channels-last tensors (tests/stack/test_mmcv_ops.py), so each output is
    made contiguous (one copy per output). Stages after the last out index are not computed.
    """

    @staticmethod
    def config_schema():
        """The config values ConvNeXt reads, with their types and ranges
        (``models.convnext_schema``): what the tools check before anything is built."""
        from .convnext_schema import SCHEMA
        return SCHEMA

    def __init__(self, arch: Union[str, dict, ArchSpec] = 'v1-tiny', in_channels: int = 3,
                 out_indices: Union[int, Sequence[int]] = (0, 1, 2, 3),
                 drop_path_rate: float = 0., layer_scale_init_value: Optional[float] = None,
                 frozen_stages: int = -1, with_cp: bool = False, fast_path: bool = True,
                 init_cfg: Optional[Union[dict, list]] = None, *,
                 output_stride: Optional[int] = None, **unknown) -> None:
        if unknown:
            raise ConvNeXtArgumentError(_unknown_arguments_message(unknown))
        super().__init__(init_cfg=init_cfg)
        try:
            spec = resolve_arch(arch)
        except (ValueError, TypeError) as error:  # one class for every config mistake
            raise ConvNeXtConfigError(str(error)) from None
        self._arch = spec
        depths, channels = spec.depths, spec.channels
        num_stages = len(depths)
        if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels <= 0:
            raise ConvNeXtConfigError(
                f'ConvNeXt in_channels must be a positive int, got {in_channels!r}.')
        if not 0. <= drop_path_rate < 1.:
            raise ConvNeXtConfigError(
                f'ConvNeXt drop_path_rate must be in [0, 1), got {drop_path_rate!r}.')
        strides = native_output_strides(num_stages)
        if output_stride is None:
            output_stride = strides[-1]
        if isinstance(output_stride, bool) or not isinstance(output_stride, int) \
                or output_stride not in strides:
            raise ConvNeXtConfigError(
                f'ConvNeXt output_stride must be one of {list(strides)} for this '
                f'{num_stages}-stage arch ({strides[-1]}: as published; smaller: the last stages '
                f'dilated instead of downsampled), got {output_stride!r}.')
        if isinstance(frozen_stages, bool) or not isinstance(frozen_stages, int) \
                or not -1 <= frozen_stages <= num_stages:
            raise ConvNeXtConfigError(
                f'ConvNeXt frozen_stages must be an int in [-1, {num_stages}] (-1: nothing, '
                f'0: the stem, {num_stages}: every stage) for this {num_stages}-stage arch, '
                f'got {frozen_stages!r}.')
        if layer_scale_init_value is None:
            layer_scale_init_value = None if spec.grn else 1e-6
        self.in_channels = in_channels
        self.out_indices = _normalize_out_indices(out_indices, num_stages)
        self.drop_path_rate = drop_path_rate
        self.layer_scale_init_value = layer_scale_init_value
        self.output_stride = output_stride
        self.frozen_stages = frozen_stages
        self.with_cp = with_cp
        self.fast_path = fast_path

        # Stem (patchify conv k4 s4 + LN) and the LN + conv k2 s2 downsample layers (dilated
        # stages: k2 s1, dilated, 'same' padding; the odd extra row/column at the end, as timm).
        dilations = stage_dilations(num_stages, output_stride)
        self.downsample_layers = nn.ModuleList([nn.Sequential(
            nn.Conv2d(in_channels, channels[0], kernel_size=4, stride=4),
            LayerNorm2d(channels[0]))])
        for i in range(1, num_stages):
            down_dilation = dilations[i][0]
            conv = (nn.Conv2d(channels[i - 1], channels[i], kernel_size=2, stride=2)
                    if down_dilation == 0 else
                    SamePaddedConv2d(channels[i - 1], channels[i], kernel_size=2,
                                     dilation=down_dilation))
            self.downsample_layers.append(nn.Sequential(LayerNorm2d(channels[i - 1]), conv))

        # Stages; drop-path rates exactly as the official code computes them (float32 linspace).
        rates = torch.linspace(0, drop_path_rate, sum(depths), device='cpu').tolist()
        self.stages = nn.ModuleList()
        for i, depth in enumerate(depths):
            first = sum(depths[:i])
            self.stages.append(nn.Sequential(*[
                ConvNeXtBlock(channels[i], drop_path_rate=rates[first + j],
                              layer_scale_init_value=layer_scale_init_value, grn=spec.grn,
                              dilation=dilations[i][1], fast_path=fast_path)
                for j in range(depth)]))

        for i in self.out_indices:
            self.add_module(f'norm{i}', LayerNorm2d(channels[i]))

        self.apply(self._init_module)
        self._freeze_stages()

    # ---------------------------------------------------------------- output contract
    @property
    def arch_spec(self) -> ArchSpec:
        """The resolved architecture (name, depths, channels, grn)."""
        return self._arch

    @property
    def num_stages(self) -> int:
        return len(self._arch.depths)

    @property
    def stage_strides(self) -> Tuple[int, ...]:
        """Stride of every stage's output, read off the stem/downsample convs."""
        strides, total = [], 1
        for layer in self.downsample_layers:
            conv = next(m for m in layer if isinstance(m, nn.Conv2d))
            total *= conv.stride[0]
            strides.append(total)
        return tuple(strides)

    @property
    def out_channels(self) -> Tuple[int, ...]:
        """Channels of each output, one per out index (for necks' ``in_channels``)."""
        return tuple(self._arch.channels[i] for i in self.out_indices)

    @property
    def out_strides(self) -> Tuple[int, ...]:
        """Stride of each output w.r.t. the input, one per out index (4, 8, 16, 32 for all at
        ``output_stride=32``; 4, 8, 16, 16 at 16; 4, 8, 8, 8 at 8)."""
        strides = self.stage_strides
        return tuple(strides[i] for i in self.out_indices)

    # ---------------------------------------------------------------- init
    @staticmethod
    def _init_module(m: nn.Module) -> None:
        """The official init: truncated normal (std .02) conv/linear weights, zero biases."""
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def init_weights(self) -> None:
        """Load ``Pretrained`` init_cfg via our converter; otherwise mmengine's usual init.

        The official initialisation already happened at construction time.
        """
        cfg = self.init_cfg
        if isinstance(cfg, dict) and cfg.get('type') == 'Pretrained':
            from mmengine.logging import MMLogger

            from convnext_backbone.checkpoint import load_pretrained
            load_pretrained(self, cfg['checkpoint'], prefix=cfg.get('prefix'),
                            logger=MMLogger.get_current_instance())
            self._is_init = True
            return
        if isinstance(cfg, (list, tuple)) and any(
                isinstance(c, dict) and c.get('type') == 'Pretrained' for c in cfg):
            raise ConvNeXtConfigError(
                "ConvNeXt: give init_cfg=dict(type='Pretrained', checkpoint=...) "
                'on its own, not inside a list of init configs.')
        super().init_weights()

    # ---------------------------------------------------------------- forward
    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4:
            hint = ' Add the batch dimension, e.g. x.unsqueeze(0).' if x.dim() == 3 else ''
            raise ConvNeXtInputError(
                f'ConvNeXt expects a 4-D input (N, C, H, W), got a {x.dim()}-D '
                f'tensor of shape {tuple(x.shape)}.{hint}')
        if x.shape[1] != self.in_channels:
            raise ConvNeXtInputError(
                f'ConvNeXt was built with in_channels={self.in_channels} but got an input with '
                f'{x.shape[1]} channels (shape {tuple(x.shape)}). Set in_channels={x.shape[1]} '
                f'in the backbone config, or give it {self.in_channels}-channel (N, C, H, W) '
                'images.')
        need = self.stage_strides[self.out_indices[-1]]
        if x.shape[2] < need or x.shape[3] < need:
            raise ConvNeXtInputError(
                f'ConvNeXt input of size {tuple(x.shape[2:])} is too small: with out_indices '
                f'{self.out_indices} both H and W must be >= {need}. Resize or pad the images '
                f'to at least {need}x{need}, or drop the deeper out_indices.')

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Features of the ``out_indices`` stages, each after its ``norm{i}``."""
        self._check_input(x)
        x = x.contiguous(memory_format=torch.channels_last)
        outs = []
        for i in range(self.out_indices[-1] + 1):
            x = self.downsample_layers[i](x)
            if self.with_cp and torch.is_grad_enabled() and i >= self.frozen_stages:
                for block in self.stages[i]:
                    x = cp.checkpoint(block, x, use_reentrant=False)
            else:
                x = self.stages[i](x)
            if i in self.out_indices:
                outs.append(getattr(self, f'norm{i}')(x).contiguous())
        return tuple(outs)

    # ---------------------------------------------------------------- freezing
    def _frozen_modules(self):
        if self.frozen_stages >= 0:
            yield self.downsample_layers[0]
        for i in range(self.frozen_stages):
            if i > 0:
                yield self.downsample_layers[i]
            yield self.stages[i]

    def _freeze_stages(self) -> None:
        for module in self._frozen_modules():
            module.eval()
            for param in module.parameters():
                param.requires_grad = False

    def train(self, mode: bool = True) -> 'ConvNeXt':
        """Switch mode, keeping frozen stages in eval mode."""
        super().train(mode)
        self._freeze_stages()
        return self

    # ---------------------------------------------------------------- layer decay
    @property
    def num_layers(self) -> int:
        """The official configs' ``num_layers``: 6 for ConvNeXt-T, 12 for S/B/L/XL.

        = (id of the second-to-last, "deep", stage's first chunk) + its depth / 3, rounded up.
        """
        deep = self.num_stages - 2
        return deep + 1 + math.ceil(self._arch.depths[deep] / 3)

    def get_layer_depth(self, param_name: str,
                        decay_type: str = 'layer_wise') -> Tuple[int, int]:
        """Layer id of a parameter and the number of ids, as in the official layer-decay code.

        ``param_name`` is relative to the backbone (a leading ``backbone.`` is ignored). Returns
        ``(layer_id, num_layers + 2)``; lr scale = ``rate ** (num_layer_ids - 1 - layer_id)``.

        layer_wise: stem -> 0; stage s before the deep (second-to-last) stage and its downsample
        -> s + 1; the deep stage's downsample and blocks -> s + 1 + block // 3; last stage and its
        downsample -> num_layers; anything else (output norms) -> num_layers + 1.
        stage_wise: downsample layers -> 0; stages.s -> s + 1; anything else -> num_layers + 1.
        """
        if decay_type not in DECAY_TYPES:
            raise ValueError(f'ConvNeXt.get_layer_depth: decay_type must be one of '
                             f'{list(DECAY_TYPES)}, got {decay_type!r}.')
        num_layers = self.num_layers
        other = num_layers + 1, num_layers + 2
        name = param_name[len('backbone.'):] if param_name.startswith('backbone.') else param_name
        match = _PARAM_RE.match(name)
        if match is None or int(match.group(2)) >= self.num_stages:
            return other
        kind, stage = match.group(1), int(match.group(2))
        if decay_type == 'stage_wise':
            return (0 if kind == 'downsample_layers' else stage + 1), num_layers + 2
        deep = self.num_stages - 2
        if kind == 'downsample_layers' and stage == 0:
            layer_id = 0
        elif stage < deep:
            layer_id = stage + 1
        elif stage == deep:
            block = int(match.group(3) or 0) if kind == 'stages' else 0
            layer_id = deep + 1 + block // 3
        else:
            layer_id = num_layers
        return layer_id, num_layers + 2
