"""A tiny mmengine Runner training launched by torchrun (used by test_distributed.py).

It keeps mmengine's default ``dist_cfg`` (NCCL), as mmdet/mmseg configs do: on a machine without
a GPU, our launchers' fix (convnext_backbone.cli.distributed.cpu_distributed) makes that run on
gloo. Each rank writes its final weights so the
test can check that DDP kept them in sync.
"""
import sys

import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner

from convnext_backbone.cli.distributed import cpu_distributed


class ToyRegressor(BaseModel):
    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, inputs, targets, mode='loss'):
        pred = self.linear(torch.stack(inputs))
        return dict(loss=((pred.squeeze(1) - torch.stack(targets)) ** 2).mean())


def main(work_dir):
    cpu_distributed()  # as tools/train.py does for --launcher pytorch
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(16, 4, generator=g)
    data = [dict(inputs=x, targets=x.sum()) for x in xs]
    runner = Runner(
        model=ToyRegressor(), work_dir=work_dir, launcher='pytorch',
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=True),
                              batch_size=2, num_workers=0),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.05)),
        train_cfg=dict(by_epoch=True, max_epochs=2), default_hooks=dict(logger=None))
    runner.train()
    rank = torch.distributed.get_rank()
    torch.save(runner.model.module.state_dict(), f'{work_dir}/final_rank{rank}.pt')
    print(f'rank {rank} of {torch.distributed.get_world_size()} finished '
          f'{runner.iter} iterations on {torch.distributed.get_backend()}')


if __name__ == '__main__':
    main(sys.argv[1])
