"""``ToolRunner``: mmengine's Runner as our tools run it (a subclass, not a patch).

* The config dump (mmengine logs the whole config, ~680 lines for Mask R-CNN, at INFO before it
  builds the model) goes to the log file only: on the terminal it is one line saying where the
  config is. An error in the model's build then ends the terminal output, not 680 lines above it.
* The model's parts are checked to fit (``engine.model_fit``) right after the model is built,
  before datasets, optimizer or weights.
* :class:`~convnext_backbone.cli.progress.ProgressHook` records where the run is (for the
  Ctrl-C line, the undoing of a refused start, and where a traceback is kept).

mmdet's and mmseg's own tools keep mmengine's Runner (and its console dump); the model check
reaches them through ``CrashSafeCheckpointHook``, which our configs name.
"""
import logging

from mmengine.runner import Runner

from ..engine.model_fit import check_model_fits
from . import progress


class _NotTheConfigDump(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith('Config:\n')


class ToolRunner(Runner):
    """mmengine's Runner with the config dump in the log file only, a model-fit check after the
    build, and progress recorded (see the module's docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.register_hook(progress.ProgressHook())

    def _log_env(self, env_cfg: dict) -> None:
        console = [h for h in self.logger.handlers if isinstance(h, logging.StreamHandler)
                   and not isinstance(h, logging.FileHandler)]
        dump_filter = _NotTheConfigDump()
        for handler in console:
            handler.addFilter(dump_filter)
        try:
            super()._log_env(env_cfg)
        finally:
            for handler in console:
                handler.removeFilter(dump_filter)
        log_file = progress.log_file_of(self)
        progress.current().log_file = log_file
        if log_file and self.cfg._cfg_dict:
            self.logger.info(f'Config: in {log_file} (not repeated here).')

    def build_model(self, model):
        built = super().build_model(model)
        check_model_fits(built)
        return built
