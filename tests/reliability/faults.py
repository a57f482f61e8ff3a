"""Run one of our tools with an injected fault, so a test can SIGKILL it at an exact point.

    python tests/reliability/faults.py --marker PATH (--pause-before-iter K
        | --stall-write NAME | --pause-in MODULE:NAME [--from-iter K])
        -- tools/train.py CONFIG ARGS...

--pause-before-iter K: when training iteration K (1-based) starts, its batch already loaded,
    create MARKER and sleep: the process is "in the middle of training", K - 1 iterations done.
--stall-write NAME: when a checkpoint named NAME is written to disk (under its own name or under
    a temporary name for it), write the first half of its bytes, flush them to disk, create
    MARKER and sleep: a disk that stalls, or a kill, in the middle of a checkpoint write.

--pause-in MODULE:NAME: when the function NAME of MODULE is called (from training iteration K
    on, default 1; 0: any call), create MARKER and sleep inside it: e.g.
    mmengine.config.config:FormatCode, the formatter mmengine runs on the config while it saves
    a checkpoint.

The test waits for MARKER, then kills the process (SIGKILL), or interrupts it (SIGINT:
Ctrl-C); SIGUSR1 prints every thread's stack (for a run that does not end when it should).
Nothing else changes: the tool runs as ``python tools/train.py ...`` would (same config, same
random numbers). Test helper only; the package never imports it.
"""
import argparse
import faulthandler
import importlib
import os
import os.path as osp
import runpy
import signal
import sys
import time


def _stop_here(marker: str) -> None:
    # The marker appears whole (written aside, then renamed): once the test sees it, the
    # process is here. Short sleeps: a signal is acted on within 50 ms whichever thread the
    # kernel hands it to.
    with open(f'{marker}.part', 'w') as f:
        f.write(str(os.getpid()))
    os.replace(f'{marker}.part', marker)
    while True:  # until the test kills or interrupts us
        time.sleep(0.05)


def pause_before_iteration(k: int, marker: str) -> None:
    from mmengine.runner import loops

    for loop in (loops.IterBasedTrainLoop, loops.EpochBasedTrainLoop):
        original = loop.run_iter

        def run_iter(self, *args, _original=original, **kwargs):
            if self.runner.iter + 1 == k:
                _stop_here(marker)
            return _original(self, *args, **kwargs)

        loop.run_iter = run_iter


def stall_write(name: str, marker: str) -> None:
    from mmengine.fileio.backends import local_backend

    original = local_backend.LocalBackend.put

    def put(self, obj, filepath):
        base = osp.basename(str(filepath))
        if base == name or base.startswith(f'.{name}.'):
            os.makedirs(osp.dirname(str(filepath)) or '.', exist_ok=True)
            with open(filepath, 'wb') as f:
                f.write(obj[:len(obj) // 2])
                f.flush()
                os.fsync(f.fileno())
                _stop_here(marker)
        return original(self, obj, filepath)

    local_backend.LocalBackend.put = put


def pause_in(target: str, from_iter: int, marker: str) -> None:
    from mmengine.runner import loops

    module_name, name = target.split(':')
    module = importlib.import_module(module_name)
    original = getattr(module, name)
    started = [0]  # training iterations begun

    def function(*args, **kwargs):
        if started[0] >= from_iter:
            _stop_here(marker)
        return original(*args, **kwargs)

    setattr(module, name, function)
    for loop in (loops.IterBasedTrainLoop, loops.EpochBasedTrainLoop):
        run_iter = loop.run_iter

        def counted(self, *args, _original=run_iter, **kwargs):
            started[0] = self.runner.iter + 1
            return _original(self, *args, **kwargs)

        loop.run_iter = counted


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument('--marker', required=True)
    parser.add_argument('--pause-before-iter', type=int)
    parser.add_argument('--stall-write')
    parser.add_argument('--pause-in')
    parser.add_argument('--from-iter', type=int, default=1)
    parser.add_argument('tool', nargs=argparse.REMAINDER)
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # the test's "where are you?"
    # Ctrl-C as in a terminal's foreground: a suite started in the background (`make test &`,
    # nohup, some CI runners) hands its processes SIGINT ignored, which Python keeps.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tool = args.tool[1:] if args.tool[:1] == ['--'] else args.tool
    if args.pause_before_iter:
        pause_before_iteration(args.pause_before_iter, args.marker)
    if args.stall_write:
        stall_write(args.stall_write, args.marker)
    if args.pause_in:
        pause_in(args.pause_in, args.from_iter, args.marker)
    sys.argv = tool
    sys.path.insert(0, osp.dirname(osp.abspath(tool[0])))
    runpy.run_path(tool[0], run_name='__main__')


if __name__ == '__main__':
    main()
