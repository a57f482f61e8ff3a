"""A tiny mmengine Runner training (a 4-to-1 linear regressor on 4 samples) for tests of
checkpoint hooks: seconds per run, real checkpoints, real resume."""
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

CRASH_SAFE_HOOK = 'convnext_backbone.CrashSafeCheckpointHook'


class Regressor(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets, mode='loss'):
        pred = self.linear(torch.stack(inputs)).squeeze(1)
        return dict(loss=((pred - torch.stack(targets)) ** 2).mean())


def train_regressor(work_dir, epochs, resume=False, hook=CRASH_SAFE_HOOK, lr=0.01, **hook_args):
    """Train ``epochs`` epochs into ``work_dir`` with a checkpoint hook of type ``hook`` (a
    checkpoint every epoch; ``hook_args`` go to the hook); returns the Runner."""
    data = [dict(inputs=torch.ones(4) * i, targets=torch.tensor(float(i))) for i in range(4)]
    runner = Runner(
        model=Regressor(), work_dir=str(work_dir), resume=resume,
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=lr)),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        default_hooks=dict(checkpoint=dict(type=hook, interval=1, **hook_args), logger=None))
    runner.train()
    return runner
