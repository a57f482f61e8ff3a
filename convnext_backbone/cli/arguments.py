"""The command-line options our tools share, spelled once.

``--cfg-options`` is parsed by mmengine's ``DictAction``; a malformed item (no ``=``) is reported
through argparse's own error (usage line plus one ``error:`` line, exit status 2) instead of a
traceback from inside the action.
"""
import argparse

from mmengine.config import DictAction

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')


class CfgOptionsAction(DictAction):
    """mmengine's ``DictAction`` with a usage error for an item that is not ``KEY=VALUE``."""

    def __call__(self, parser, namespace, values, option_string=None):
        for item in values:
            if '=' not in item or item.startswith('='):
                parser.error(f'{option_string} {item!r}: each item must be KEY=VALUE, e.g. '
                             'train_dataloader.batch_size=4 (lists: key=[1,2] or key=1,2)')
        try:
            super().__call__(parser, namespace, values, option_string)
        except Exception as error:  # e.g. unbalanced brackets in a list value
            parser.error(f'{option_string} {" ".join(values)}: cannot parse ({error}); write '
                         'KEY=VALUE items, lists as key=[1,2] with balanced brackets')


def add_config(parser: argparse.ArgumentParser) -> None:
    """The positional CONFIG, ``--cfg-options`` and ``--debug``."""
    parser.add_argument('config', help='config file, e.g. configs/maskrcnn_convnext_t_coco.py')
    parser.add_argument('--cfg-options', nargs='+', action=CfgOptionsAction, metavar='KEY=VALUE',
                        help='override config entries, e.g. train_dataloader.batch_size=4')
    add_debug(parser)


def add_debug(parser: argparse.ArgumentParser) -> None:
    """``--debug``: read by ``cli.entry.run_tool`` (every tool), listed here for ``--help``."""
    parser.add_argument('--debug', action='store_true',
                        help='on failure, print the traceback before the one-line error '
                        '(also: CONVNEXT_DEBUG=1)')


def add_run(parser: argparse.ArgumentParser, work_dir_help: str) -> None:
    """What a Runner-based tool needs besides the config: work dir, launcher, trusted files."""
    parser.add_argument('--work-dir', help=work_dir_help)
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none',
                        help='how processes were started (pytorch = torchrun)')
    parser.add_argument('--trust-checkpoint', nargs='+', default=[], metavar='PATH',
                        help='checkpoint files/folders you vouch for: full unpickling allowed')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help=argparse.SUPPRESS)
