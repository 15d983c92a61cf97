"""Run under torchrun by test_pretrain.py: a short DDP fit that records each rank's weights and losses."""

import json
import sys
from pathlib import Path

import torch

from sb3_crptpro.data import CrossDomainDataset
from sb3_crptpro.pretraining.pretrainer import PretrainConfig, Pretrainer

data, out = sys.argv[1], Path(sys.argv[2])
config = PretrainConfig(updates=4, batch_size=8, num_protos=16, log_every=2, checkpoint_every=2, progress=False)
trainer = Pretrainer(config, CrossDomainDataset(data), out / "work")
trainer.fit()
weights = torch.cat([p.detach().flatten() for p in trainer.online.parameters()])
record = {"rank": trainer.rank, "world": trainer.world, "weights": weights.tolist()[:5000], "losses": trainer.losses}
(out / f"rank{trainer.rank}.json").write_text(json.dumps(record))
trainer.save(out / "encoder.safetensors")
