"""Test helpers: random weights, and checkpoint layouts written independently of our converter.

The official and FCMAE layouts are produced here from a timm state dict by explicit, test-side
renaming (and, for FCMAE, explicit index loops over the kernel offsets), so that converting them
back with ``convert_state_dict`` and comparing network outputs checks the converter against an
independent path rather than against itself.
"""
import re

import torch
import torch.nn.functional as F


def randomise_(module: torch.nn.Module, seed: int = 0, scale_std: float = 0.5) -> None:
    """Give every parameter non-trivial values, so a wrong mapping changes the outputs.

    Conv/linear weights ~ N(0, 1/fan_in); norm weights ~ 1 + N(0, 0.2); biases ~ N(0, 0.1);
    layer-scale ``gamma`` and GRN gamma/beta (timm: ``grn.weight``/``grn.bias``) ~ N(0, scale_std).
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            if re.search(r'(gamma|beta|grn\.weight|grn\.bias)$', name):
                std, mean = scale_std, 0.
            elif param.dim() > 1:
                std, mean = param[0].numel() ** -0.5, 0.
            elif name.endswith('weight'):
                std, mean = 0.2, 1.
            else:
                std, mean = 0.1, 0.
            param.copy_(mean + std * torch.randn(param.shape, generator=gen))


def layer_norm_2d(x: torch.Tensor, norm: torch.nn.Module) -> torch.Tensor:
    """LayerNorm over channels of an NCHW tensor with ``norm``'s weight, bias and eps."""
    x = x.permute(0, 2, 3, 1)
    x = F.layer_norm(x, (x.shape[-1],), norm.weight, norm.bias, norm.eps)
    return x.permute(0, 3, 1, 2)


def assert_close_scaled(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5):
    """``assert_close`` with rtol and an atol of rtol times the reference's largest value."""
    atol = rtol * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=atol)


def timm_to_official(timm_sd: dict) -> dict:
    """A timm ConvNeXt(-V2) full-model state dict in the official classification layout.

    Written key by key, the inverse of timm's own remap; GRN parameters as (1, 1, 1, C), the final
    norm as ``norm.*`` and the classifier as ``head.*``.
    """
    out = {}
    for key, value in timm_sd.items():
        parts = key.split('.')
        if parts[0] == 'stem':
            new = ['downsample_layers', '0', parts[1]] + parts[2:]
        elif parts[0] == 'stages' and parts[2] == 'downsample':
            new = ['downsample_layers', parts[1], parts[3]] + parts[4:]
        elif parts[0] == 'stages' and parts[2] == 'blocks':
            block = ['stages', parts[1], parts[3]]
            rest = parts[4:]
            names = {('conv_dw',): ['dwconv'], ('norm',): ['norm'], ('gamma',): ['gamma'],
                     ('mlp', 'fc1'): ['pwconv1'], ('mlp', 'fc2'): ['pwconv2']}
            if rest[:2] == ['mlp', 'grn']:
                new = block + ['grn', {'weight': 'gamma', 'bias': 'beta'}[rest[2]]]
                value = value.reshape(1, 1, 1, -1)
            elif tuple(rest[:2]) in names:
                new = block + names[tuple(rest[:2])] + rest[2:]
            else:
                new = block + names[tuple(rest[:1])] + rest[1:]
        elif parts[:2] == ['head', 'norm']:
            new = ['norm'] + parts[2:]
        elif parts[:2] == ['head', 'fc']:
            new = ['head'] + parts[2:]
        else:
            raise AssertionError(f'unexpected timm key {key}')
        out['.'.join(new)] = value.clone()
    return out


def official_to_fcmae(official_sd: dict) -> dict:
    """An official ConvNeXt-V2 state dict in the FCMAE (MinkowskiEngine) pre-training layout.

    Kernels are filled offset by offset: ``kernel[kw * k + kh, ci, co] = weight[co, ci, kh, kw]``
    (dense) and ``kernel[kw * k + kh, c] = weight[c, 0, kh, kw]`` (depthwise), the official
    ConvNeXt-V2 convention. Adds a decoder, ``proj``, ``pred`` and ``mask_token`` to be dropped.
    """
    out = {}
    for key, value in official_sd.items():
        if key.startswith(('head.', 'norm.')):
            continue
        if re.match(r'downsample_layers\.0\.', key):
            out['encoder.' + key] = value.clone()
            continue
        m = re.match(r'(downsample_layers\.\d+)\.0\.(weight|bias)$', key)
        if m:
            out[f'encoder.{m.group(1)}.0.ln.{m.group(2)}'] = value.clone()
            continue
        if key.endswith(('dwconv.weight', '.1.weight')) and value.dim() == 4:
            cout, cin, k, _ = value.shape
            depthwise = key.endswith('dwconv.weight')
            kernel = torch.empty(k * k, cout) if depthwise else torch.empty(k * k, cin, cout)
            for kh in range(k):
                for kw in range(k):
                    if depthwise:
                        kernel[kw * k + kh, :] = value[:, 0, kh, kw]
                    else:
                        kernel[kw * k + kh, :, :] = value[:, :, kh, kw].t()
            out['encoder.' + key[:-len('weight')] + 'kernel'] = kernel
        elif key.endswith(('dwconv.bias', '.1.bias')):
            out['encoder.' + key] = value.reshape(1, -1).clone()
        elif re.search(r'\.norm\.(weight|bias)$', key):
            out['encoder.' + key.replace('.norm.', '.norm.ln.')] = value.clone()
        elif re.search(r'\.pwconv[12]\.(weight|bias)$', key):
            head, leaf = key.rsplit('.', 1)
            out[f'encoder.{head}.linear.{leaf}'] = value.clone()
        elif '.grn.' in key:
            out['encoder.' + key] = value.reshape(1, -1).clone()
        else:
            raise AssertionError(f'unexpected official key {key}')
    dim = 16
    out.update({'mask_token': torch.zeros(1, dim, 1, 1), 'proj.weight': torch.zeros(dim, 4, 1, 1),
                'proj.bias': torch.zeros(dim), 'decoder.0.dwconv.weight': torch.zeros(dim, 1, 7, 7),
                'decoder.0.grn.gamma': torch.zeros(1, 1, 1, 4 * dim),
                'pred.weight': torch.zeros(48, dim, 1, 1), 'pred.bias': torch.zeros(48)})
    return out


def minkowski_conv(x: torch.Tensor, kernel: torch.Tensor, bias: torch.Tensor, stride: int,
                   padding: int) -> torch.Tensor:
    """A conv computed straight from a Minkowski-layout kernel, offset by offset (reference).

    out[n, co, y, x] = bias[co] + sum_{kh, kw, ci} in[n, ci, y*s + kh, x*s + kw] * K[kw*k + kh, ...]
    with K (k*k, Cin, Cout) dense or (k*k, C) depthwise.
    """
    volume = kernel.shape[0]
    k = int(round(volume ** 0.5))
    x = F.pad(x, (padding,) * 4)
    n, c, h, w = x.shape
    oh, ow = (h - k) // stride + 1, (w - k) // stride + 1
    out = None
    for kh in range(k):
        for kw in range(k):
            patch = x[:, :, kh:kh + stride * (oh - 1) + 1:stride,
                      kw:kw + stride * (ow - 1) + 1:stride]
            tap = kernel[kw * k + kh]
            term = patch * tap.view(1, -1, 1, 1) if kernel.dim() == 2 \
                else torch.einsum('nchw,cd->ndhw', patch, tap)
            out = term if out is None else out + term
    return out + bias.reshape(1, -1, 1, 1)
