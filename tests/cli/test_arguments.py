"""convnext_backbone.cli.arguments: the tools' shared options, and --cfg-options mistakes as
argparse usage errors (one `error:` line, exit status 2) instead of tracebacks."""
import argparse

import pytest

from convnext_backbone.cli import arguments

from conftest import REPO, run_tool


def parser():
    p = argparse.ArgumentParser(prog='tool')
    arguments.add_config(p)
    arguments.add_run(p, 'work dir')
    return p


def test_shared_options_parse_as_mmengine_expects():
    args = parser().parse_args(['c.py', '--cfg-options', 'a.b=1', 'c=[1,2]', '--launcher',
                                'pytorch', '--trust-checkpoint', 'x.pth', '--local-rank', '1'])
    assert args.cfg_options == {'a.b': 1, 'c': [1, 2]}
    assert args.launcher == 'pytorch' and args.trust_checkpoint == ['x.pth']
    assert args.local_rank == 1 and args.work_dir is None


@pytest.mark.parametrize('item', ['batch_size', '=4', 'a=[1,2'])
def test_malformed_cfg_options_are_a_usage_error(item, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args(['c.py', '--cfg-options', item])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('tool: error: --cfg-options')
    assert 'KEY=VALUE' in err[-1] and 'Traceback' not in '\n'.join(err)


@pytest.mark.slow
@pytest.mark.parametrize('tool', ['train.py', 'test.py', 'benchmark.py', 'get_flops.py'])
def test_every_config_tool_reports_bad_cfg_options_the_same_way(tool):
    args = ['configs/toy/maskrcnn_convnext_toy_coco.py']
    if tool == 'test.py':
        args.append('some.pth')
    proc = run_tool(REPO / 'tools' / tool, *args, '--cfg-options', 'train_dataloader',
                    check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert 'error: --cfg-options' in last and 'KEY=VALUE' in last
    assert 'Traceback' not in proc.stderr
